"""File writes: one ModifyFile stream's edits, applied in one write.

The bytes are already in chunk files (``_upload``) when :meth:`Files.modify`
takes its turn to write, so the write holds metadata only: a file row per
changed path in the target commit, with the reference counts to match
(``_refcounts``). Reading files is ``_tree``'s (over the read cache of
``_db``).
"""

from __future__ import annotations

import re
import sqlite3
from typing import Mapping, Optional

import attrs

from pachs3gw.pfsd import _content, _errors, _refcounts, _rows, _scan
from pachs3gw.pfsd._chunks import ChunkStore
from pachs3gw.pfsd._commits import Lineages, ensure_branch, new_commit
from pachs3gw.pfsd._content import Content
from pachs3gw.pfsd._db import Database
from pachs3gw.pfsd._records import COMMIT_ID, ORIGIN_USER, CommitRec, CommitRef, Edit, validate_name


class Files:
    """ModifyFile's store side: the writable check before the bytes, the commit after."""

    def __init__(self, database: Database, lineages: Lineages, chunks: ChunkStore) -> None:
        self._write = database.write
        self._make_durable = database.make_durable
        self._db = database.connection
        self._lineages = lineages
        self.chunks = chunks

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
        inline: Mapping[bytes, bytes] = {},
        defer_sync: bool = False,
    ) -> CommitRec:
        """Apply one ModifyFile stream atomically; returns the commit written.

        A branch target writes into the head if it is open, else into a new
        commit that is finished in the same transaction (pachd's
        oneOffModifyFile). The parent is the head *now*, under the write
        lock, so concurrent streams on one branch each get their own commit.
        """
        # Synced only if it finishes a commit (see _db): a write into an
        # open commit becomes durable with the commit's finish.
        with self._write(durable=False) as db:
            if inline:
                db.executemany(
                    "INSERT OR IGNORE INTO inline_chunks VALUES (?, ?)", inline.items()
                )
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
                    if not defer_sync:  # (the client's next commit syncs it: DEFER_SYNC_METADATA)
                        self._make_durable()
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
            if inline:
                # Bytes no file ended up using (an unchanged rewrite) go again.
                db.executemany(
                    "DELETE FROM inline_chunks WHERE address=? AND NOT EXISTS"
                    " (SELECT 1 FROM chunks WHERE address=? AND refs>0)",
                    [(a, a) for a in inline],
                )
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
