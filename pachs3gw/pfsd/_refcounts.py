"""Content rows and the references that keep chunks alive.

A file row points at a ``contents`` row (shared by every file with the same
extents: CopyFile reuses it); a content row counts the file rows that point
at it, and ``chunks`` counts, per chunk file, the extents of live contents
inside it. The collector (``_gc``) deletes a chunk file only at zero, so
a file row that goes must give its reference back: through here. (Adding
one is a ``refs=refs+1`` next to the INSERT, in ``_files`` and
``_commits.Commits.squash_commit``.) Module functions over the write
connection, called inside a write.
"""

from __future__ import annotations

import sqlite3
from collections import Counter

from pachs3gw.pfsd import _content
from pachs3gw.pfsd._content import Content
from pachs3gw.pfsd._records import CommitRec
from pachs3gw.pfsd._schema import inserted_id


def content(db: sqlite3.Connection, content_id: int) -> Content:
    row = db.execute(
        "SELECT size, hash, extents, blocks FROM contents WHERE id=?", (content_id,)
    ).fetchone()
    return Content(row[0], row[2], row[3], row[1], content_id)


def store_content(db: sqlite3.Connection, content: Content) -> int:
    """The row of ``content`` (reused if it has one), its chunks counted once more."""
    if content.content_id is not None:
        # A copied content whose row still exists is shared; one that went
        # with a deleted repo since the copy was read is stored anew (its
        # chunks were protected by the upload's lease meanwhile).
        if db.execute("SELECT 1 FROM contents WHERE id=?", (content.content_id,)).fetchone():
            return content.content_id
    content_id = inserted_id(db.execute(
        "INSERT INTO contents(size, hash, extents, blocks, refs) VALUES (?,?,?,?,0)",
        (content.size, content.hash, content.extents, content.blocks),
    ))
    counts = Counter(content.chunk_addresses())
    db.executemany("INSERT OR IGNORE INTO chunks VALUES (?, 0)", [(a,) for a in counts])
    db.executemany(
        "UPDATE chunks SET refs=refs+? WHERE address=?", [(n, a) for a, n in counts.items()]
    )
    return content_id


def decref(db: sqlite3.Connection, content_id: int, n: int = 1) -> None:
    """``n`` file rows fewer point at a content; at zero it goes, and its chunks' counts drop."""
    db.execute("UPDATE contents SET refs=refs-? WHERE id=?", (n, content_id))
    row = db.execute(
        "SELECT refs, extents FROM contents WHERE id=?", (content_id,)
    ).fetchone()
    if row is not None and row[0] <= 0:
        db.execute("DELETE FROM contents WHERE id=?", (content_id,))
        counts = Counter(e[0] for e in _content.EXTENT.iter_unpack(row[1]))
        db.executemany(
            "UPDATE chunks SET refs=refs-? WHERE address=?",
            [(n, a) for a, n in counts.items()],
        )


def drop_rows(db: sqlite3.Connection, lineage: int, above_depth: int) -> None:
    """Delete the file rows of ``lineage`` deeper than ``above_depth``."""
    counts = Counter(
        r[0]
        for r in db.execute(
            "SELECT content FROM files WHERE lineage=? AND depth>? AND content IS NOT NULL",
            (lineage, above_depth),
        )
    )
    for content_id, n in counts.items():
        decref(db, content_id, n)
    db.execute("DELETE FROM files WHERE lineage=? AND depth>?", (lineage, above_depth))


def drop_depth(db: sqlite3.Connection, commit: CommitRec) -> None:
    """Delete the file rows ``commit`` itself wrote."""
    counts = Counter(
        r[0]
        for r in db.execute(
            "SELECT content FROM files WHERE lineage=? AND depth=? AND content IS NOT NULL",
            (commit.lineage, commit.depth),
        )
    )
    for content_id, n in counts.items():
        decref(db, content_id, n)
    db.execute("DELETE FROM files WHERE lineage=? AND depth=?", (commit.lineage, commit.depth))
