"""The durable PFS store: projects, repos, branches, commits and file trees.

All metadata lives in one SQLite database in WAL mode with
``synchronous=FULL``: a transaction that returned is on disk, so a
ModifyFile acknowledged after its commit transaction survives ``kill -9``.
Writes are serialized by one lock (SQLite allows one writer anyway; the lock
avoids busy-waiting); the bytes of an upload are written to chunk files
*before* the lock is taken, so the lock is held for metadata only. Readers
use their own thread's connection and never wait for writers.

Each method runs on the calling thread (a gRPC worker thread); every
thread gets its own connection.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from typing import Optional

import attrs
from twisted.logger import Logger

from pachs3gw.datadir import lock_data_dir
from pachs3gw.pfsd import _content, _errors, _refcounts, _rows, _scan
from pachs3gw.pfsd._chunks import ChunkStore
from pachs3gw.pfsd._commits import Commits, Lineages, ensure_branch, new_commit
from pachs3gw.pfsd._db import Database
from pachs3gw.pfsd._repos import Repos
from pachs3gw.pfsd._gc import Collector, keep_reserve
from pachs3gw.pfsd._content import Content
from pachs3gw.pfsd._records import (
    COMMIT_ID,
    DEFAULT_PROJECT,
    ORIGIN_USER,
    CommitRec,
    CommitRef,
    Edit,
    validate_name,
)
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
        self.database = Database(os.path.join(data_dir, "meta.sqlite"))
        # What the parts below and the readers call, bound once: as cheap
        # as a method of this class.
        self._db = self.database.connection
        self._write = self.database.write
        self._read = self.database.read
        #: This thread's connection, for the read helpers in ``_tree``.
        self.reader = self.database.connection
        self.resolve = self.database.resolve
        self.cached_content = self.database.cached_content
        self.cached_committed_time = self.database.cached_committed_time
        self._collector = Collector(self.database, self.chunks, reserve_path)
        self._gc_wanted = self._collector.wanted
        self._freeing = self._collector.freeing
        self.discard = self._collector.discard
        self.collect_garbage = self._collector.collect_garbage
        self._lineages = Lineages()
        self.segments = self._lineages.segments
        repos = Repos(self.database, self._lineages, self._gc_wanted, self._collector.freeing)
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
        commits = Commits(self.database, self._lineages, self._gc_wanted)
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
        db = self._db()
        db.executescript(SCHEMA)
        with self._write() as db:
            if db.execute("SELECT 1 FROM projects WHERE name=?", (DEFAULT_PROJECT,)).fetchone() is None:
                db.execute(
                    "INSERT INTO projects VALUES (?, ?, ?)", (DEFAULT_PROJECT, "", time.time())
                )
        log.info(
            "pfsd store open in {data_dir}; recovery removed {temp} unfinished chunk file(s)",
            data_dir=os.path.abspath(data_dir),
            temp=self.chunks.recovered_temp,
        )
        self._collector.start()

    def close(self) -> None:
        self._collector.close()
        self.chunks.close()
        self.database.close()
        self._dir_lock.release()
        log.info("pfsd store closed in {data_dir}", data_dir=os.path.abspath(self.data_dir))

    # projects -------------------------------------------------------------

    # commits ------------------------------------------------------------------


    # contents ---------------------------------------------------------------

    # files: reading -----------------------------------------------------------

    # files: writing -------------------------------------------------------------

    def check_writable(self, target: CommitRef) -> None:
        """Fail early (before any byte is uploaded) if ``target`` cannot take writes."""
        db = self._db()
        repo = _rows.repo(db, target.project, target.repo)
        if not target.id or (not COMMIT_ID.match(target.id) and not re.search(r"[\^~]", target.id)):
            branch = target.id or target.branch
            if not branch:
                raise _errors.unknown("cannot pick commit with no id or branch")
            validate_name(branch)
            if _rows.is_output(db, repo, branch):
                raise _errors.output_branch(repo.project, repo.name, branch)
            return
        commit = _rows.resolve(db, target)
        if commit.finished is not None:
            raise _errors.commit_finished(repo.project, repo.name, commit.id)

    def modify(
        self,
        target: CommitRef,
        edits: dict[str, Edit],
        deleted_dirs: list[str],
    ) -> CommitRec:
        """Apply one ModifyFile stream atomically; returns the commit written.

        A branch target writes into the head if it is open, else into a new
        commit that is finished in the same transaction (pachd's
        oneOffModifyFile). The parent is the head *now*, under the write
        lock, so concurrent streams on one branch each get their own commit.
        """
        with self._write() as db:
            repo = _rows.repo(db, target.project, target.repo)
            branch: Optional[str] = None
            if not target.id:
                branch = target.branch
            elif not COMMIT_ID.match(target.id) and not re.search(r"[\^~]", target.id):
                branch = target.id
            commit: CommitRec
            if branch:
                head = ensure_branch(db, repo, branch)
                if head is not None and head.finished is None:
                    commit = head
                else:
                    commit = new_commit(db, repo, head, branch, ORIGIN_USER, "", True)
            else:
                commit = _rows.resolve(db, target)
                if commit.finished is not None:
                    raise _errors.commit_finished(repo.project, repo.name, commit.id)
            segments = self._lineages.segments(db, commit)
            size = commit.size
            for prefix in deleted_dirs:
                scan = _scan.MergedScan(db, segments, prefix, _scan.dir_upper(prefix))
                doomed: list[tuple[str, int, int]] = []
                while True:
                    row = scan.next()
                    if row is None:
                        break
                    if row[0] not in edits:
                        doomed.append((row[0], row[2], row[3]))
                for path, depth, content_id in doomed:
                    size -= self._set_file(db, commit, path, depth, content_id, None)
            for path, edit in edits.items():
                old = _scan.lookup(db, segments, path)
                old_id = old[2] if old is not None else None
                new: Optional[Content] = None
                parts = list(edit.parts)
                if not edit.reset and old_id is not None:
                    parts.insert(0, _refcounts.content(db, old_id))
                for part in parts:
                    new = part if new is None else _content.concat(new, part, self.chunks.read)
                if new is None and old_id is None:
                    continue
                if new is not None and new.content_id is not None and new.content_id == old_id:
                    continue
                size -= self._set_file(
                    db, commit, path, old[1] if old else None, old_id, new
                )
            db.execute("UPDATE commits SET size=? WHERE id=?", (size, commit.id))
            return attrs.evolve(commit, size=size)

    def _set_file(
        self,
        db: sqlite3.Connection,
        commit: CommitRec,
        path: str,
        old_depth: Optional[int],
        old_id: Optional[int],
        new: Optional[Content],
    ) -> int:
        """Write the row for ``path`` in ``commit``; returns the size removed minus added."""
        delta = 0
        if old_id is not None:
            delta += db.execute("SELECT size FROM contents WHERE id=?", (old_id,)).fetchone()[0]
            if old_depth == commit.depth:
                # The commit's own row is replaced: it no longer holds the old content.
                own = db.execute(
                    "SELECT content FROM files WHERE lineage=? AND path=? AND depth=?",
                    (commit.lineage, path, commit.depth),
                ).fetchone()
                if own is not None and own[0] is not None:
                    _refcounts.decref(db, own[0])
        new_id: Optional[int] = None
        if new is not None:
            new_id = _refcounts.store_content(db, new)
            db.execute("UPDATE contents SET refs=refs+1 WHERE id=?", (new_id,))
            delta -= new.size
        db.execute(
            "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)",
            (commit.lineage, path, commit.depth, new_id),
        )
        return delta
