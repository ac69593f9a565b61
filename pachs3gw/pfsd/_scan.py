"""Reading the file tree of a commit out of the lineage-indexed ``files`` table.

A commit sees the rows of a few *segments*: its own lineage up to its depth,
then that lineage's base lineage up to the base depth, and so on. A row is
``(lineage, path, depth) -> content id`` (NULL = deleted). The file at a path
is the deepest row of the first segment that has one; a range of paths is a
k-way merge of one ordered index scan per segment. Both cost one B-tree seek
per segment, whatever the number of files and commits in the repo.
"""

from __future__ import annotations

import heapq
import sqlite3
from collections import deque
from typing import Iterator, Optional, Sequence

#: (lineage, max depth) pairs, nearest first.
Segments = Sequence[tuple[int, int]]
#: A live file found by a scan: path, lineage, depth, content id.
Row = tuple[str, int, int, int]

_BATCH = 256
#: An upper bound above every path (paths are validated not to contain it).
TOP = "\U0010ffff"

_FORWARD = (
    "SELECT path, MAX(depth), content FROM files WHERE lineage=? AND path>=? AND path<?"
    " AND depth<=? GROUP BY path ORDER BY path LIMIT ?"
)
_BACKWARD = (
    "SELECT path, MAX(depth), content FROM files WHERE lineage=? AND path>=? AND path<?"
    " AND depth<=? GROUP BY path ORDER BY path DESC LIMIT ?"
)


def lookup(db: sqlite3.Connection, segments: Segments, path: str) -> Optional[tuple[int, int, Optional[int]]]:
    """The newest row for ``path``: (lineage, depth, content id or None if deleted)."""
    for lineage, depth in segments:
        row = db.execute(
            "SELECT depth, content FROM files WHERE lineage=? AND path=? AND depth<=?"
            " ORDER BY depth DESC LIMIT 1",
            (lineage, path, depth),
        ).fetchone()
        if row is not None:
            return lineage, row[0], row[1]
    return None


def dir_upper(prefix: str) -> str:
    """The smallest string above every path under ``prefix`` (which ends with '/')."""
    return prefix[:-1] + "0"


class _Cursor:
    """Ordered, batched scan of one segment within [lo, hi)."""

    def __init__(
        self, db: sqlite3.Connection, lineage: int, depth: int, lo: str, hi: str, reverse: bool
    ) -> None:
        self._db = db
        self._lineage = lineage
        self._depth = depth
        self.lo = lo
        self.hi = hi
        self._reverse = reverse
        self._buffer: deque[tuple[str, int, Optional[int]]] = deque()
        self._done = False

    def head(self) -> Optional[tuple[str, int, Optional[int]]]:
        if not self._buffer and not self._done:
            rows = self._db.execute(
                _BACKWARD if self._reverse else _FORWARD,
                (self._lineage, self.lo, self.hi, self._depth, _BATCH),
            ).fetchall()
            if len(rows) < _BATCH:
                self._done = True
            if rows:
                if self._reverse:
                    self.hi = rows[-1][0]
                else:
                    self.lo = rows[-1][0] + "\x00"
            self._buffer.extend(rows)
        return self._buffer[0] if self._buffer else None

    def pop(self) -> None:
        self._buffer.popleft()

    def narrow(self, lo: str, hi: str) -> None:
        """Restrict the remaining scan to [lo, hi)."""
        while self._buffer and not (lo <= self._buffer[0][0] < hi):
            self._buffer.popleft()
        self.lo = max(self.lo, lo)
        self.hi = min(self.hi, hi)


class MergedScan:
    """The live files of a commit with lo <= path < hi, in path order."""

    def __init__(
        self, db: sqlite3.Connection, segments: Segments, lo: str, hi: str, reverse: bool = False
    ) -> None:
        self.lo = lo
        self.hi = hi
        self._reverse = reverse
        self._cursors = [_Cursor(db, l, d, lo, hi, reverse) for l, d in segments]

    def next(self) -> Optional[Row]:
        while True:
            best: Optional[str] = None
            winner: Optional[tuple[str, int, Optional[int]]] = None
            winner_lineage = 0
            for cursor in self._cursors:
                head = cursor.head()
                if head is None:
                    continue
                if best is None or (head[0] > best if self._reverse else head[0] < best):
                    best = head[0]
                    winner = head
                    winner_lineage = cursor._lineage
            if winner is None:
                return None
            for cursor in self._cursors:
                head = cursor.head()
                if head is not None and head[0] == best:
                    cursor.pop()
            if winner[2] is not None:
                return winner[0], winner_lineage, winner[1], winner[2]

    def skip_dir(self, prefix: str) -> None:
        """Skip the rest of directory ``prefix`` (ending in '/') in scan order."""
        if self._reverse:
            self.hi = min(self.hi, prefix)
        else:
            self.lo = max(self.lo, dir_upper(prefix))
        for cursor in self._cursors:
            cursor.narrow(self.lo, self.hi)


_CHANGED = (
    "SELECT DISTINCT path FROM files INDEXED BY files_depth"
    " WHERE lineage=? AND depth>? AND depth<=? ORDER BY path"
)


def changed_paths(db: sqlite3.Connection, a: Segments, b: Segments) -> Iterator[str]:
    """Every path whose file may differ between two commits' trees, in path order.

    Two commits see the same rows of a lineage up to the smaller of their
    depths in it (0 where a commit does not see the lineage at all), and
    lineages keep one order in every chain, so a path can differ only if it
    has a row in a lineage between those two depths. Those rows come from
    the ``(lineage, depth)`` index: the cost follows the number of changes
    between the commits, not the size of the tree or of the history.
    """
    depth_a, depth_b = dict(a), dict(b)
    scans = []
    for lineage in sorted(set(depth_a) | set(depth_b)):
        low, high = sorted((depth_a.get(lineage, 0), depth_b.get(lineage, 0)))
        if low != high:
            scans.append((row[0] for row in db.execute(_CHANGED, (lineage, low, high))))
    last = None
    for path in heapq.merge(*scans):
        if path != last:
            yield path
            last = path
