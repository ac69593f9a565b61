"""The embedded PFS store: its parts, composed behind one object.

:class:`Store` opens a data directory (its lock first: a second owner would
sweep this one's temporary chunks and collect its leased ones) and builds
the parts, each a small object holding what it needs:

* ``_db.Database``: the SQLite connections, group commit, the read cache;
* ``_repos.Repos``: projects, repos and branches;
* ``_commits.Commits`` (and ``Lineages``): commits and their history;
* ``_files.Files``: the writes of a ModifyFile stream;
* ``_gc.Collector``: chunk collection and the disk-space reserve;

over the module functions they share: ``_rows`` (finding the rows a
request names), ``_refcounts`` (content rows and the references that keep
chunks alive), ``_records`` (the values they exchange).

The store's methods are the parts' methods, bound here once, so a call
costs what a method of this class would (no forwarding layer): it matters
on the read path (``resolve``, ``reader``, ``segments``, the cached
readers), which runs for every HEAD and GET.

Every method runs on the calling thread (a gRPC worker thread, or the
in-process caller's); each thread gets its own connection.
"""

from __future__ import annotations

import os
import time

from twisted.logger import Logger

from pachs3gw.datadir import lock_data_dir
from pachs3gw.pfsd._chunks import ChunkStore
from pachs3gw.pfsd._commits import Commits, Lineages
from pachs3gw.pfsd._db import Database
from pachs3gw.pfsd._files import Files
from pachs3gw.pfsd._gc import Collector, keep_reserve
from pachs3gw.pfsd._records import DEFAULT_PROJECT
from pachs3gw.pfsd._repos import Repos
from pachs3gw.pfsd._schema import SCHEMA

log = Logger()


class Store:
    """The embedded PFS store rooted at ``data_dir``."""

    def __init__(self, data_dir: str) -> None:
        os.makedirs(data_dir, exist_ok=True)
        self.data_dir = data_dir
        # Before anything touches the files: a second owner would sweep
        # this one's temporary chunks and collect its leased ones.
        self._dir_lock = lock_data_dir(data_dir)
        try:
            self._open(data_dir)
        except BaseException:
            self._dir_lock.release()
            raise

    def _open(self, data_dir: str) -> None:
        self.chunks = ChunkStore(os.path.join(data_dir, "chunks"))
        reserve_path = os.path.join(data_dir, "reserve")
        keep_reserve(reserve_path)
        self.database = database = Database(os.path.join(data_dir, "meta.sqlite"))
        self.chunks.read_inline = database.inline_chunk
        self._collector = collector = Collector(database, self.chunks, reserve_path)
        lineages = Lineages()
        repos = Repos(database, lineages, collector.wanted, collector.freeing)
        commits = Commits(database, lineages, collector.wanted)
        files = Files(database, lineages, self.chunks)

        # Readers (every HEAD and GET): a commit from its handle, this
        # thread's connection, a commit's segments, and the cached rows.
        self.resolve = database.resolve
        self.reader = database.connection
        self.segments = lineages.segments
        self.cached_content = database.cached_content
        self.cached_committed_time = database.cached_committed_time
        # ModifyFile
        self.check_writable = files.check_writable
        self.modify = files.modify
        self.discard = collector.discard
        # projects, repos, branches
        self.create_project = repos.create_project
        self.inspect_project = repos.inspect_project
        self.list_projects = repos.list_projects
        self.delete_project = repos.delete_project
        self.create_repo = repos.create_repo
        self.inspect_repo = repos.inspect_repo
        self.list_repos = repos.list_repos
        self.delete_repo = repos.delete_repo
        self.create_branch = repos.create_branch
        self.inspect_branch = repos.inspect_branch
        self.list_branches = repos.list_branches
        self.delete_branch = repos.delete_branch
        # commits
        self.start_commit = commits.start_commit
        self.finish_commit = commits.finish_commit
        self.inspect_commit = commits.inspect_commit
        self.list_commits = commits.list_commits
        self.children = commits.children
        self.commit_set = commits.commit_set
        self.all_commits = commits.all_commits
        self.squash_commit = commits.squash_commit
        self.drop_commit = commits.drop_commit
        self.clear_commit = commits.clear_commit
        self.collect_garbage = collector.collect_garbage

        database.connection().executescript(SCHEMA)
        with database.write() as db:
            if db.execute("SELECT 1 FROM projects WHERE name=?", (DEFAULT_PROJECT,)).fetchone() is None:
                db.execute(
                    "INSERT INTO projects VALUES (?, ?, ?)", (DEFAULT_PROJECT, "", time.time())
                )
        log.info(
            "pfsd store open in {data_dir}; recovery removed {temp} unfinished chunk file(s)",
            data_dir=os.path.abspath(data_dir),
            temp=self.chunks.recovered_temp,
        )
        collector.start()

    def close(self) -> None:
        self._collector.close()
        self.chunks.close()
        self.database.close()
        self._dir_lock.release()
        log.info("pfsd store closed in {data_dir}", data_dir=os.path.abspath(self.data_dir))
