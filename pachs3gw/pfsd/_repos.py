"""Projects, repos and branches: creating, inspecting, listing and deleting them.

Deleting drops rows and reference counts only (``_refcounts``); the chunk
files go with the next collection (``_gc``), which each deletion asks for.
A deletion runs through :meth:`Collector.freeing`, so that it still commits
on a full disk.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from typing import Callable, Optional

from pachs3gw.pfsd import _errors, _refcounts, _rows
from pachs3gw.pfsd._commits import Lineages, new_commit
from pachs3gw.pfsd._db import Database
from pachs3gw.pfsd._records import (
    DEFAULT_PROJECT,
    ORIGIN_AUTO,
    BranchRec,
    CommitRec,
    CommitRef,
    RepoRec,
    validate_name,
)


class Repos:
    """The project, repo and branch calls of one store."""

    def __init__(
        self,
        database: Database,
        lineages: Lineages,
        gc_wanted: threading.Event,
        freeing: Callable[[Callable[[], None]], None],
    ) -> None:
        self._write = database.write
        self._read = database.read
        self._db = database.connection
        self._lineages = lineages
        self._gc_wanted = gc_wanted
        self._freeing = freeing

    # projects ---------------------------------------------------------------

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
