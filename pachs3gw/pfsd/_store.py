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
from pachs3gw.pfsd._gc import Collector, keep_reserve
from pachs3gw.pfsd._content import Content
from pachs3gw.pfsd._records import (
    COMMIT_ID,
    DEFAULT_PROJECT,
    ORIGIN_AUTO,
    ORIGIN_USER,
    BranchRec,
    CommitRec,
    CommitRef,
    Edit,
    RepoRec,
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

    def create_project(self, name: str, description: str, update: bool) -> None:
        validate_name(name)
        with self._write() as db:
            if db.execute("SELECT 1 FROM projects WHERE name=?", (name,)).fetchone():
                if not update:
                    raise _errors.project_exists(name)
                db.execute("UPDATE projects SET description=? WHERE name=?", (description, name))
                return
            db.execute("INSERT INTO projects VALUES (?, ?, ?)", (name, description, time.time()))

    def inspect_project(self, name: str) -> tuple[str, str, float]:
        row = self._db().execute("SELECT * FROM projects WHERE name=?", (name or DEFAULT_PROJECT,)).fetchone()
        if row is None:
            raise _errors.project_not_found(name)
        return row

    def list_projects(self) -> list[tuple[str, str, float]]:
        return self._db().execute("SELECT * FROM projects ORDER BY name").fetchall()

    def delete_project(self, name: str, force: bool) -> None:
        name = name or DEFAULT_PROJECT
        with self._write() as db:
            if db.execute("SELECT 1 FROM projects WHERE name=?", (name,)).fetchone() is None:
                raise _errors.project_not_found(name)
            repos = db.execute("SELECT name FROM repos WHERE project=?", (name,)).fetchall()
            if repos and not force:
                raise _errors.unknown(
                    f"cannot delete project {name}: it still has {len(repos)} repo(s)"
                )
            for (repo,) in repos:
                self._delete_repo(db, _rows.repo(db, name, repo))
            db.execute("DELETE FROM projects WHERE name=?", (name,))
        self._gc_wanted.set()

    # repos ------------------------------------------------------------------

    def create_repo(self, project: str, name: str, type_: str, description: str, update: bool) -> None:
        project = project or DEFAULT_PROJECT
        validate_name(name)
        with self._write() as db:
            if db.execute("SELECT 1 FROM projects WHERE name=?", (project,)).fetchone() is None:
                raise _errors.project_not_found(project)
            row = db.execute(
                "SELECT id FROM repos WHERE project=? AND name=?", (project, name)
            ).fetchone()
            if row is not None:
                if not update:
                    raise _errors.repo_exists(project, name)
                db.execute("UPDATE repos SET description=? WHERE id=?", (description, row[0]))
                return
            db.execute(
                "INSERT INTO repos(project, name, type, description, created) VALUES (?,?,?,?,?)",
                (project, name, type_ or "user", description, time.time()),
            )

    def inspect_repo(self, project: str, name: str) -> tuple[RepoRec, list[str], int]:
        """The repo, its branch names and the size of its biggest branch head."""
        with self._read() as db:
            repo = _rows.repo(db, project, name)
            return (repo,) + self._repo_summary(db, repo)

    def _repo_summary(self, db: sqlite3.Connection, repo: RepoRec) -> tuple[list[str], int]:
        rows = db.execute(
            "SELECT b.name, c.size FROM branches b LEFT JOIN commits c ON c.id = b.head"
            " WHERE b.repo=? ORDER BY b.created DESC",
            (repo.id,),
        ).fetchall()
        return [r[0] for r in rows], max([r[1] or 0 for r in rows], default=0)

    def list_repos(self, projects: list[str], type_: str) -> list[tuple[RepoRec, list[str], int]]:
        with self._read() as db:
            result = []
            for repo in _rows.all_repos(db):
                if projects and repo.project not in projects:
                    continue
                if type_ and repo.type != type_:
                    continue
                result.append((repo,) + self._repo_summary(db, repo))
            return result

    def delete_repo(self, project: str, name: str, force: bool) -> None:
        def delete() -> None:
            with self._write() as db:
                self._delete_repo(db, _rows.repo(db, project, name))

        self._freeing(delete)
        self._gc_wanted.set()

    def _delete_repo(self, db: sqlite3.Connection, repo: RepoRec) -> None:
        lineages = [r[0] for r in db.execute("SELECT id FROM lineages WHERE repo=?", (repo.id,))]
        for lineage in lineages:
            _refcounts.drop_rows(db, lineage, 0)
            db.execute("DELETE FROM lineages WHERE id=?", (lineage,))
            self._lineages.forget(lineage)
        db.execute("DELETE FROM commits WHERE repo=?", (repo.id,))
        db.execute("DELETE FROM branches WHERE repo=?", (repo.id,))
        db.execute("DELETE FROM provenance WHERE repo=? OR prov_repo=?", (repo.id, repo.id))
        db.execute("DELETE FROM repos WHERE id=?", (repo.id,))

    # branches ---------------------------------------------------------------

    def create_branch(
        self,
        project: str,
        repo_name: str,
        name: str,
        head: Optional[CommitRef],
        provenance: list[tuple[str, str, str]],
    ) -> None:
        validate_name(name)
        with self._write() as db:
            repo = _rows.repo(db, project, repo_name)
            prov_rows = []
            for p_project, p_repo, p_branch in provenance:
                prov = _rows.repo(db, p_project, p_repo)
                if _rows.branch_row(db, prov, p_branch) is None:
                    raise _errors.branch_not_found(prov.project, prov.name, p_branch)
                if prov.id == repo.id and p_branch == name:
                    raise _errors.unknown(f"branch {repo.project}/{repo.name}@{name} cannot be in its own provenance")
                prov_rows.append((repo.id, name, prov.id, p_branch))
            existing = _rows.branch_row(db, repo, name)
            head_commit: Optional[CommitRec] = None
            if head is not None:
                head_commit = _rows.resolve(db, head)
                if head_commit.repo.id != repo.id:
                    raise _errors.unknown(
                        f"branch {name} and its head commit must be in the same repo"
                    )
            if existing is None:
                db.execute(
                    "INSERT INTO branches VALUES (?, ?, NULL, ?)", (repo.id, name, time.time())
                )
                if head_commit is None:
                    # pachd gives every new branch a head: an empty finished commit.
                    head_commit = new_commit(db, repo, None, name, ORIGIN_AUTO, "", True)
            if head_commit is not None:
                db.execute(
                    "UPDATE branches SET head=? WHERE repo=? AND name=?",
                    (head_commit.id, repo.id, name),
                )
            db.execute("DELETE FROM provenance WHERE repo=? AND branch=?", (repo.id, name))
            db.executemany("INSERT OR IGNORE INTO provenance VALUES (?,?,?,?)", prov_rows)

    def inspect_branch(self, project: str, repo_name: str, name: str) -> BranchRec:
        with self._read() as db:
            repo = _rows.repo(db, project, repo_name)
            row = _rows.branch_row(db, repo, name)
            if row is None:
                raise _errors.branch_not_found(repo.project, repo.name, name)
            return self._branch_rec(db, repo, row)

    def _branch_rec(self, db: sqlite3.Connection, repo: RepoRec, row: tuple[str, Optional[str], float]) -> BranchRec:
        name, head, created = row
        prov = db.execute(
            "SELECT r.project, r.name, p.prov_branch FROM provenance p JOIN repos r"
            " ON r.id = p.prov_repo WHERE p.repo=? AND p.branch=?",
            (repo.id, name),
        ).fetchall()
        sub = db.execute(
            "SELECT r.project, r.name, p.branch FROM provenance p JOIN repos r"
            " ON r.id = p.repo WHERE p.prov_repo=? AND p.prov_branch=?",
            (repo.id, name),
        ).fetchall()
        return BranchRec(
            repo=repo,
            name=name,
            head=_rows.commit_by_id(db, repo, head) if head else None,
            created=created,
            provenance=[tuple(r) for r in prov],
            subvenance=[tuple(r) for r in sub],
        )

    def list_branches(self, project: str, repo_name: str, reverse: bool) -> list[BranchRec]:
        with self._read() as db:
            repo = _rows.repo(db, project, repo_name)
            rows = db.execute(
                "SELECT name, head, created FROM branches WHERE repo=? ORDER BY created "
                + ("ASC" if reverse else "DESC"),
                (repo.id,),
            ).fetchall()
            return [self._branch_rec(db, repo, row) for row in rows]

    def delete_branch(self, project: str, repo_name: str, name: str, force: bool) -> None:
        """Delete a branch (a missing one is fine) and the commits only it reached."""

        def delete() -> None:
            with self._write() as db:
                repo = _rows.repo(db, project, repo_name)
                if _rows.branch_row(db, repo, name) is None:
                    return
                db.execute("DELETE FROM branches WHERE repo=? AND name=?", (repo.id, name))
                db.execute("DELETE FROM provenance WHERE repo=? AND branch=?", (repo.id, name))
                db.execute(
                    "DELETE FROM provenance WHERE prov_repo=? AND prov_branch=?", (repo.id, name)
                )
                self._prune(db, repo)

        self._freeing(delete)
        self._gc_wanted.set()

    def _prune(self, db: sqlite3.Connection, repo: RepoRec) -> None:
        """Drop the commits (and their file rows) no branch head reaches any more."""
        reach: dict[int, int] = {}
        heads = db.execute(
            "SELECT c.lineage, c.depth FROM branches b JOIN commits c ON c.id = b.head"
            " WHERE b.repo=?",
            (repo.id,),
        ).fetchall()
        for lineage, depth in heads:
            for seg_lineage, seg_depth in self._lineages.segments_of(db, lineage, depth):
                if reach.get(seg_lineage, -1) < seg_depth:
                    reach[seg_lineage] = seg_depth
        for (lineage,) in db.execute(
            "SELECT id FROM lineages WHERE repo=?", (repo.id,)
        ).fetchall():
            keep = reach.get(lineage, 0)
            _refcounts.drop_rows(db, lineage, keep)
            db.execute("DELETE FROM commits WHERE lineage=? AND depth>?", (lineage, keep))
            if keep == 0 and lineage not in reach:
                db.execute("DELETE FROM lineages WHERE id=?", (lineage,))
                self._lineages.forget(lineage)

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
