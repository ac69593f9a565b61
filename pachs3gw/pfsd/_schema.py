"""The metadata schema (SQLite, WAL; what is synced when: ``_db``).

Every commit has a *lineage* and a *depth* (parent depth + 1). A commit
extends its parent's lineage when the parent is that lineage's tip; otherwise
(a fork) it starts a new lineage whose base is the parent. A file change is
one ``files`` row ``(lineage, path, depth)``; see ``_scan`` for how a commit's
tree is read from them. ``contents`` rows are shared by every file row with
the same bytes (CopyFile reuses them) and hold the extent lists; ``chunks``
counts, per chunk file, how many extents of live contents point into it;
``inline_chunks`` holds the bytes of the small chunks that are not files
(``_chunks``), counted in ``chunks`` like the others.
"""

from __future__ import annotations

import sqlite3

SCHEMA = """
CREATE TABLE IF NOT EXISTS projects(
    name TEXT PRIMARY KEY, description TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS repos(
    id INTEGER PRIMARY KEY, project TEXT NOT NULL, name TEXT NOT NULL, type TEXT NOT NULL,
    description TEXT NOT NULL, created REAL NOT NULL, UNIQUE(project, name));
CREATE TABLE IF NOT EXISTS lineages(
    id INTEGER PRIMARY KEY, repo INTEGER NOT NULL, base_lineage INTEGER, base_depth INTEGER);
CREATE INDEX IF NOT EXISTS lineages_repo ON lineages(repo);
CREATE TABLE IF NOT EXISTS commits(
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, repo INTEGER NOT NULL,
    lineage INTEGER NOT NULL, depth INTEGER NOT NULL, parent TEXT, branch TEXT,
    origin INTEGER NOT NULL, description TEXT NOT NULL, started REAL NOT NULL, finished REAL,
    size INTEGER NOT NULL, error TEXT NOT NULL DEFAULT '', UNIQUE(lineage, depth));
CREATE INDEX IF NOT EXISTS commits_repo ON commits(repo, seq);
CREATE INDEX IF NOT EXISTS commits_parent ON commits(parent);
CREATE TABLE IF NOT EXISTS branches(
    repo INTEGER NOT NULL, name TEXT NOT NULL, head TEXT, created REAL NOT NULL,
    PRIMARY KEY(repo, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS provenance(
    repo INTEGER NOT NULL, branch TEXT NOT NULL, prov_repo INTEGER NOT NULL,
    prov_branch TEXT NOT NULL, PRIMARY KEY(repo, branch, prov_repo, prov_branch)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS provenance_reverse ON provenance(prov_repo, prov_branch);
CREATE TABLE IF NOT EXISTS files(
    lineage INTEGER NOT NULL, path TEXT NOT NULL, depth INTEGER NOT NULL, content INTEGER,
    PRIMARY KEY(lineage, path, depth)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS files_depth ON files(lineage, depth);
CREATE TABLE IF NOT EXISTS contents(
    id INTEGER PRIMARY KEY, size INTEGER NOT NULL, hash BLOB NOT NULL, extents BLOB NOT NULL,
    blocks BLOB NOT NULL, refs INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS chunks(
    address BLOB PRIMARY KEY, refs INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS chunks_free ON chunks(refs) WHERE refs = 0;
CREATE TABLE IF NOT EXISTS inline_chunks(
    address BLOB PRIMARY KEY, data BLOB NOT NULL);
"""


def inserted_id(cursor: sqlite3.Cursor) -> int:
    """The rowid of the row an INSERT just made.

    ``lastrowid`` is typed Optional because it is None before any INSERT;
    after one into a rowid table it is always set.
    """
    rowid = cursor.lastrowid
    assert rowid is not None
    return rowid
