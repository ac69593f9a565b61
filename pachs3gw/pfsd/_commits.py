"""Commits: their lineages, how one is made, and pachd's commit operations.

A commit's tree is read through its *segments*: its own lineage up to its
depth, then the base of that lineage, and so on (``_schema``, ``_scan``).
:class:`Lineages` caches the bases (they change only when a squash re-bases a
fork or a deletion drops a lineage, which forget them). :func:`new_commit`
and :func:`ensure_branch` are the two steps every writer shares (StartCommit,
a ModifyFile on a branch, CreateBranch, a branch losing its head).
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from typing import Callable, Optional

from pachs3gw.pfsd import _errors, _refcounts, _rows
from pachs3gw.pfsd._db import Database
from pachs3gw.pfsd._records import (
    ORIGIN_AUTO,
    ORIGIN_USER,
    CommitRec,
    CommitRef,
    RepoRec,
    validate_name,
)
from pachs3gw.pfsd._schema import inserted_id


class Lineages:
    """The base of each lineage, cached (any thread: plain dict operations)."""

    def __init__(self) -> None:
        self._cache: dict[int, tuple[Optional[int], Optional[int]]] = {}

    def _lineage(self, db: sqlite3.Connection, lineage: int) -> tuple[Optional[int], Optional[int]]:
        cached = self._cache.get(lineage)
        if cached is None:
            row = db.execute(
                "SELECT base_lineage, base_depth FROM lineages WHERE id=?", (lineage,)
            ).fetchone()
            cached = (row[0], row[1]) if row else (None, None)
            self._cache[lineage] = cached
        return cached

    def segments_of(self, db: sqlite3.Connection, lineage: Optional[int], depth: Optional[int]) -> list[tuple[int, int]]:
        segments = []
        while lineage is not None and depth is not None:
            segments.append((lineage, depth))
            lineage, depth = self._lineage(db, lineage)
        return segments

    def segments(self, db: sqlite3.Connection, commit: CommitRec) -> list[tuple[int, int]]:
        return self.segments_of(db, commit.lineage, commit.depth)

    def forget(self, lineage: int) -> None:
        """*Inside the write that changes or drops it.* Read ``lineage``'s base anew next time."""
        self._cache.pop(lineage, None)


def new_commit(
    db: sqlite3.Connection,
    repo: RepoRec,
    parent: Optional[CommitRec],
    branch: Optional[str],
    origin: int,
    description: str,
    finished: bool,
) -> CommitRec:
    """Insert a commit (the lineage rule: ``_schema``) and move the branch."""
    if parent is not None:
        depth = parent.depth + 1
        # Extend the lineage only from its tip (a squash or drop can leave
        # a gap above the parent that deeper commits still read through).
        taken = db.execute(
            "SELECT 1 FROM commits WHERE lineage=? AND depth>=? LIMIT 1",
            (parent.lineage, depth),
        ).fetchone()
        if taken is None:
            lineage = parent.lineage
        else:
            lineage = inserted_id(db.execute(
                "INSERT INTO lineages(repo, base_lineage, base_depth) VALUES (?,?,?)",
                (repo.id, parent.lineage, parent.depth),
            ))
    else:
        depth = 1
        lineage = inserted_id(db.execute(
            "INSERT INTO lineages(repo, base_lineage, base_depth) VALUES (?, NULL, NULL)",
            (repo.id,),
        ))
    now = time.time()
    commit_id = uuid.uuid4().hex
    cur = db.execute(
        "INSERT INTO commits(id, repo, lineage, depth, parent, branch, origin, description,"
        " started, finished, size) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (
            commit_id,
            repo.id,
            lineage,
            depth,
            parent.id if parent else None,
            branch,
            origin,
            description,
            now,
            now if finished else None,
            parent.size if parent else 0,
        ),
    )
    if branch:
        db.execute(
            "UPDATE branches SET head=? WHERE repo=? AND name=?", (commit_id, repo.id, branch)
        )
    return CommitRec(
        inserted_id(cur), commit_id, repo, lineage, depth, parent.id if parent else None,
        branch, origin, description, now, now if finished else None,
        parent.size if parent else 0, "",
    )


def ensure_branch(db: sqlite3.Connection, repo: RepoRec, name: str) -> Optional[CommitRec]:
    """The head of a branch we are about to commit on (created if missing)."""
    validate_name(name)
    row = _rows.branch_row(db, repo, name)
    if row is None:
        db.execute("INSERT INTO branches VALUES (?, ?, NULL, ?)", (repo.id, name, time.time()))
        return None
    if _rows.is_output(db, repo, name):
        raise _errors.output_branch(repo.project, repo.name, name)
    return _rows.commit_by_id(db, repo, row[1]) if row[1] else None


class Commits:
    """StartCommit, FinishCommit, InspectCommit, ListCommit, Squash/Drop/ClearCommit."""

    def __init__(self, database: Database, lineages: Lineages, gc_wanted: threading.Event) -> None:
        self._write = database.write
        self._read = database.read
        self._db = database.connection
        self._cached_resolve = database.resolve
        self._lineages = lineages
        self._gc_wanted = gc_wanted
        self._commit_finished = threading.Condition()

    def start_commit(
        self, project: str, repo_name: str, branch: str, parent: Optional[CommitRef], description: str
    ) -> CommitRec:
        # Not synced: an open commit (see _db); a branch made here is synced
        # with the commit's finish, or with any durable write before it.
        with self._write(durable=False) as db:
            repo = _rows.repo(db, project, repo_name)
            if branch:
                head = ensure_branch(db, repo, branch)
            else:
                head = None
            if parent is not None and (parent.id or parent.branch):
                head = _rows.resolve(db, parent)
            if head is not None and head.finished is None:
                # pachd's linkParent: one open commit at a time on a line of history.
                raise _errors.parent_not_finished(repo.project, repo.name, head.id)
            return new_commit(db, repo, head, branch or None, ORIGIN_USER, description, False)

    def finish_commit(self, ref: CommitRef, description: str, error: str, force: bool) -> None:
        with self._write() as db:
            commit = _rows.resolve(db, ref)
            if commit.finished is not None:
                raise _errors.commit_finished(commit.repo.project, commit.repo.name, commit.id)
            db.execute(
                "UPDATE commits SET finished=?, error=?, description=CASE WHEN ?='' THEN"
                " description ELSE ? END WHERE id=?",
                (time.time(), error, description, description, commit.id),
            )
        with self._commit_finished:
            self._commit_finished.notify_all()

    def inspect_commit(self, ref: CommitRef, wait_finished: bool = False, is_active: Optional[Callable[[], bool]] = None) -> CommitRec:
        while True:
            commit = self._cached_resolve(ref)
            if not wait_finished or commit.finished is not None:
                return commit
            if is_active is not None and not is_active():
                return commit
            with self._commit_finished:
                self._commit_finished.wait(0.5)

    def children(self, commit: CommitRec) -> list[str]:
        return [
            r[0]
            for r in self._db().execute(
                "SELECT id FROM commits WHERE parent=? ORDER BY seq", (commit.id,)
            )
        ]

    def list_commits(
        self,
        project: str,
        repo_name: str,
        to: Optional[CommitRef],
        from_: Optional[CommitRef],
        number: int,
        reverse: bool,
        origin: int = 0,
        started: Optional[float] = None,
    ) -> list[CommitRec]:
        """pachd's ListCommit: newest first from ``to`` back to (not including) ``from_``.

        ``origin`` (an OriginKind number, 0 = any) keeps only commits of that
        origin, before ``number`` counts them, as pachd does; without ``to``,
        ``started`` keeps commits started before it (after it if ``reverse``).
        """
        with self._read() as db:
            repo = _rows.repo(db, project, repo_name)
            stop = _rows.resolve(db, from_).id if from_ is not None else None
            result: list[CommitRec] = []
            if to is not None:
                commit: Optional[CommitRec] = _rows.resolve(db, to)
                while commit is not None and commit.id != stop:
                    if not origin or commit.origin == origin:
                        result.append(commit)
                    if number and len(result) >= number and not reverse:
                        break
                    commit = (
                        _rows.commit_by_id(db, repo, commit.parent) if commit.parent else None
                    )
            else:
                where = "repo=?"
                args: list[object] = [repo.id]
                if origin:
                    where += " AND origin=?"
                    args.append(origin)
                if started is not None:
                    where += " AND started>?" if reverse else " AND started<?"
                    args.append(started)
                limit = number and not reverse
                rows = db.execute(
                    f"SELECT {_rows.COMMIT_COLUMNS} FROM commits WHERE {where} ORDER BY seq DESC"
                    + (" LIMIT ?" if limit else ""),
                    args + [number] if limit else args,
                ).fetchall()
                result = [_rows.commit_rec(repo, row) for row in rows]
            if reverse:
                result.reverse()
                if number:
                    result = result[:number]
            return result

    def commit_set(self, commit_id: str) -> list[CommitRec]:
        """The commits with a global ID: at most one here (no downstream propagation)."""
        with self._read() as db:
            row = db.execute(
                f"SELECT {_rows.COMMIT_COLUMNS} FROM commits WHERE id=?", (commit_id,)
            ).fetchone()
            if row is None:
                return []
            return [_rows.commit_rec(_rows.repo_by_id(db, row[2]), row)]

    def all_commits(self, project: str) -> list[CommitRec]:
        """Every commit (of one project, if given), newest first: ListCommitSet."""
        with self._read() as db:
            repos = {r.id: r for r in (_rows.repo_by_id(db, i) for (i,) in db.execute("SELECT id FROM repos"))}
            rows = db.execute(f"SELECT {_rows.COMMIT_COLUMNS} FROM commits ORDER BY seq DESC").fetchall()
            return [
                _rows.commit_rec(repos[row[2]], row)
                for row in rows
                if not project or repos[row[2]].project == project
            ]

    def squash_commit(self, ref: CommitRef) -> None:
        """pachd's SquashCommit: fold a commit's changes into its children and forget it.

        Every child keeps its tree: a child further along the lineage takes
        the commit's rows it does not override (moved up one depth); a
        child that forked a lineage from it gets a copy of them in its own
        first depth and the fork is re-based on the commit's parent.
        """
        with self._write() as db:
            commit = _rows.resolve(db, ref)
            repo = commit.repo
            children = [_rows.commit_by_id(db, repo, c) for c in self.children(commit)]
            if not children:
                raise _errors.unknown(
                    "cannot squash a commit that has no children as that would cause data"
                    f" loss, use the drop operation instead: {repo.project}/{repo.name}@{commit.id}"
                )
            rows = db.execute(
                "SELECT path, content FROM files WHERE lineage=? AND depth=?",
                (commit.lineage, commit.depth),
            ).fetchall()
            parent = _rows.commit_by_id(db, repo, commit.parent) if commit.parent else None
            for child in children:
                if child.lineage == commit.lineage:
                    continue
                for path, content_id in rows:
                    added = db.execute(
                        "INSERT OR IGNORE INTO files VALUES (?, ?, ?, ?)",
                        (child.lineage, path, child.depth, content_id),
                    ).rowcount
                    if added and content_id is not None:
                        db.execute("UPDATE contents SET refs=refs+1 WHERE id=?", (content_id,))
                db.execute(
                    "UPDATE lineages SET base_lineage=?, base_depth=? WHERE id=?",
                    (parent.lineage if parent else None, parent.depth if parent else None,
                     child.lineage),
                )
                self._lineages.forget(child.lineage)
            if any(child.lineage == commit.lineage for child in children):
                # Rows the child overrides stay behind (the move is ignored) and go.
                for path, content_id in rows:
                    moved = db.execute(
                        "UPDATE OR IGNORE files SET depth=? WHERE lineage=? AND path=? AND depth=?",
                        (commit.depth + 1, commit.lineage, path, commit.depth),
                    ).rowcount
                    if not moved and content_id is not None:
                        _refcounts.decref(db, content_id)
                db.execute(
                    "DELETE FROM files WHERE lineage=? AND depth=?", (commit.lineage, commit.depth)
                )
            else:
                _refcounts.drop_depth(db, commit)
            db.execute(
                "UPDATE commits SET parent=? WHERE parent=?",
                (commit.parent, commit.id),
            )
            self._forget_commit(db, commit, parent)
        self._gc_wanted.set()

    def drop_commit(self, ref: CommitRef) -> None:
        """pachd's DropCommit: delete a commit that has no children, and its changes."""
        with self._write() as db:
            commit = _rows.resolve(db, ref)
            repo = commit.repo
            if self.children(commit):
                raise _errors.unknown(
                    f"cannot drop a commit that has children: {repo.project}/{repo.name}@{commit.id}"
                )
            parent = _rows.commit_by_id(db, repo, commit.parent) if commit.parent else None
            _refcounts.drop_depth(db, commit)
            self._forget_commit(db, commit, parent)
        self._gc_wanted.set()

    def _forget_commit(
        self, db: sqlite3.Connection, commit: CommitRec, parent: Optional[CommitRec]
    ) -> None:
        """Remove a commit's row; branches at it move to its parent (or a new empty commit)."""
        db.execute("DELETE FROM commits WHERE id=?", (commit.id,))
        for (branch,) in db.execute(
            "SELECT name FROM branches WHERE repo=? AND head=?", (commit.repo.id, commit.id)
        ).fetchall():
            if parent is not None:
                db.execute(
                    "UPDATE branches SET head=? WHERE repo=? AND name=?",
                    (parent.id, commit.repo.id, branch),
                )
            else:
                new_commit(db, commit.repo, None, branch, ORIGIN_AUTO, "", True)
        if db.execute("SELECT 1 FROM commits WHERE lineage=? LIMIT 1", (commit.lineage,)).fetchone() is None:
            if db.execute(
                "SELECT 1 FROM lineages WHERE base_lineage=? LIMIT 1", (commit.lineage,)
            ).fetchone() is None:
                db.execute("DELETE FROM files WHERE lineage=?", (commit.lineage,))
                db.execute("DELETE FROM lineages WHERE id=?", (commit.lineage,))
                self._lineages.forget(commit.lineage)

    def clear_commit(self, ref: CommitRef) -> None:
        with self._write() as db:
            commit = _rows.resolve(db, ref)
            if commit.finished is not None:
                raise _errors.commit_finished(commit.repo.project, commit.repo.name, commit.id)
            _refcounts.drop_depth(db, commit)
            parent_size = 0
            if commit.parent:
                parent_size = _rows.commit_by_id(db, commit.repo, commit.parent).size
            db.execute("UPDATE commits SET size=? WHERE id=?", (parent_size, commit.id))
        self._gc_wanted.set()
