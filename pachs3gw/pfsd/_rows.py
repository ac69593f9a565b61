"""Finding the rows a request names: projects' repos, branches, commits.

Module functions over a connection (a reader's, or the write connection
inside a write), shared by every part of the store: they hold no state, so
any part can use them without knowing the others. ``resolve`` is pachd's
rule for a commit handle (branch head, ID, ``^``/``~N`` ancestry).
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any, Optional

from pachs3gw.pfsd import _errors
from pachs3gw.pfsd._records import (
    ANCESTRY,
    COMMIT_ID,
    DEFAULT_PROJECT,
    CommitRec,
    CommitRef,
    RepoRec,
)

COMMIT_COLUMNS = (
    "seq, id, repo, lineage, depth, parent, branch, origin, description, started,"
    " finished, size, error"
)


def repo(db: sqlite3.Connection, project: str, name: str) -> RepoRec:
    project = project or DEFAULT_PROJECT
    row = db.execute(
        "SELECT id, project, name, type, description, created FROM repos"
        " WHERE project=? AND name=?",
        (project, name),
    ).fetchone()
    if row is None:
        raise _errors.repo_not_found(project, name)
    return RepoRec(*row)


def repo_by_id(db: sqlite3.Connection, repo_id: int) -> RepoRec:
    row = db.execute(
        "SELECT id, project, name, type, description, created FROM repos WHERE id=?",
        (repo_id,),
    ).fetchone()
    return RepoRec(*row)


def all_repos(db: sqlite3.Connection) -> list[RepoRec]:
    """Every repo, newest first."""
    rows = db.execute(
        "SELECT id, project, name, type, description, created FROM repos"
        " ORDER BY created DESC"
    ).fetchall()
    return [RepoRec(*row) for row in rows]


def branch_row(
    db: sqlite3.Connection, repo: RepoRec, name: str
) -> Optional[tuple[str, Optional[str], float]]:
    """``(name, head, created)`` of a branch, or None."""
    return db.execute(
        "SELECT name, head, created FROM branches WHERE repo=? AND name=?", (repo.id, name)
    ).fetchone()


def is_output(db: sqlite3.Connection, repo: RepoRec, branch: str) -> bool:
    """Whether ``branch`` has provenance (an output branch: no user writes)."""
    return (
        db.execute(
            "SELECT 1 FROM provenance WHERE repo=? AND branch=? LIMIT 1", (repo.id, branch)
        ).fetchone()
        is not None
    )


def commit_rec(repo: RepoRec, row: tuple[Any, ...]) -> CommitRec:
    """A row of :data:`COMMIT_COLUMNS` as a record (``repo`` is the row's repo)."""
    return CommitRec(row[0], row[1], repo, *row[3:])


def commit_by_id(db: sqlite3.Connection, repo: RepoRec, commit_id: str) -> CommitRec:
    row = db.execute(
        f"SELECT {COMMIT_COLUMNS} FROM commits WHERE id=?", (commit_id,)
    ).fetchone()
    if row is None or row[2] != repo.id:
        raise _errors.commit_not_found(repo.project, repo.name, commit_id)
    return commit_rec(repo, row)


def resolve(db: sqlite3.Connection, ref: CommitRef) -> CommitRec:
    """A commit from its handle: branch head, ID, and ``^``/``~N`` ancestry."""
    the_repo = repo(db, ref.project, ref.repo)
    handle = ref.id or ref.branch
    if not handle:
        raise _errors.unknown("cannot pick commit with no id or branch")
    match = ANCESTRY.match(handle)
    assert match is not None
    base, ancestry = match.group(1), match.group(2)
    back = 0
    for op in re.findall(r"[\^~][0-9]*", ancestry):
        back += int(op[1:]) if len(op) > 1 else 1
    if COMMIT_ID.match(base):
        commit = commit_by_id(db, the_repo, base)
    else:
        row = branch_row(db, the_repo, base)
        if row is None:
            raise _errors.branch_not_found(the_repo.project, the_repo.name, base)
        if row[1] is None:
            raise _errors.commit_not_found(the_repo.project, the_repo.name, handle)
        commit = commit_by_id(db, the_repo, row[1])
    for _ in range(back):
        if commit.parent is None:
            raise _errors.commit_not_found(the_repo.project, the_repo.name, handle)
        commit = commit_by_id(db, the_repo, commit.parent)
    return commit



def committed_time(db: sqlite3.Connection, lineage: int, depth: int) -> Optional[float]:
    """When the commit at ``(lineage, depth)`` finished (started, if still open)."""
    row = db.execute(
        "SELECT finished, started FROM commits WHERE lineage=? AND depth=?", (lineage, depth)
    ).fetchone()
    if row is None:
        return None
    return row[0] if row[0] is not None else row[1]
