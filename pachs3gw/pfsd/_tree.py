"""Read-side file operations on one commit: inspect, list, walk, glob.

Directories are implicit (a directory exists while a file under it does)
and are reported as pachd does: ``file_type`` DIR and a path ending in '/'.
Listings are generators over a ``MergedScan``; a directory child costs one
index seek (the scan jumps past the directory's contents), so a page costs
O(page size x log n) whatever the size of the tree.
"""

from __future__ import annotations

import re
from typing import Iterator, Optional

from pachs3gw.pfsd import _errors, _scan
from pachs3gw.pfsd._scan import MergedScan, dir_upper
from pachs3gw.pfsd._records import CommitRec, FileRec, clean_path
from pachs3gw.pfsd._store import Store


class Tree:
    """The file tree of ``commit`` (call from one thread: it uses that thread's connection)."""

    def __init__(self, store: Store, commit: CommitRec) -> None:
        self.store = store
        self.commit = commit
        self._db = store.reader()
        self.segments = store.segments(self._db, commit)
        self._times: dict[tuple[int, int], Optional[float]] = {}

    def _file(self, path: str, lineage: int, depth: int, content_id: int) -> FileRec:
        key = (lineage, depth)
        if key not in self._times:
            self._times[key] = self.store.cached_committed_time(self._db, lineage, depth)
        return FileRec(path, self.store.cached_content(self._db, content_id), self._times[key])

    def _not_found(self, path: str) -> _errors.PfsError:
        repo = self.commit.repo
        return _errors.file_not_found(path, repo.project, repo.name, self.commit.id)

    def is_dir(self, prefix: str) -> bool:
        """Whether directory ``prefix`` (ending in '/') has a file below it."""
        return MergedScan(self._db, self.segments, prefix, dir_upper(prefix)).next() is not None

    def regular(self, path: str) -> Optional[FileRec]:
        """The regular file at clean path ``path``, or None (one seek per segment)."""
        hit = _scan.lookup(self._db, self.segments, path)
        if hit is not None and hit[2] is not None:
            return self._file(path, hit[0], hit[1], hit[2])
        return None

    def lookup(self, path: str) -> Optional[FileRec]:
        """The file or directory at ``path``, or None."""
        path = clean_path(path)
        if path == "/":
            return FileRec("/", None, None)
        found = self.regular(path)
        if found is not None:
            return found
        if self.is_dir(path + "/"):
            return FileRec(path + "/", None, None)
        return None

    def inspect(self, path: str) -> FileRec:
        found = self.lookup(path)
        if found is None:
            raise self._not_found(clean_path(path))
        return found

    def regular_file(self, path: str) -> FileRec:
        found = self.inspect(path)
        if found.is_dir:
            raise _errors.unknown(_errors.NOT_A_REGULAR_FILE)
        return found

    def list_dir(self, path: str, after: str = "", reverse: bool = False) -> Iterator[FileRec]:
        """The children of a directory (or the file itself), after marker ``after``."""
        found = self.inspect(path)
        if not found.is_dir:
            yield from _file_after(found, after, reverse)
            return
        prefix = found.path
        lo, hi = _bounds(prefix, dir_upper(prefix), after, reverse, skip_dir_contents=True)
        scan = MergedScan(self._db, self.segments, lo, hi, reverse)
        while True:
            row = scan.next()
            if row is None:
                return
            rest = row[0][len(prefix) :]
            slash = rest.find("/")
            if slash >= 0:
                child = prefix + rest[: slash + 1]
                yield FileRec(child, None, None)
                scan.skip_dir(child)
            else:
                yield self._file(*row)

    def walk(self, path: str, after: str = "", reverse: bool = False) -> Iterator[FileRec]:
        """Every file and directory under ``path`` (itself included), depth first."""
        found = self.inspect(path)
        if not found.is_dir:
            yield from _file_after(found, after, reverse)
            return
        prefix = found.path
        lo, hi = _bounds(prefix, dir_upper(prefix), after, reverse, skip_dir_contents=False)
        scan = MergedScan(self._db, self.segments, lo, hi, reverse)
        if reverse:
            yield from self._walk_backward(scan, prefix, after)
            return
        if not after or prefix > after:
            yield found
        open_dirs: set[str] = set()
        while True:
            row = scan.next()
            if row is None:
                return
            dirs = _ancestors(row[0], len(prefix))
            for d in dirs:
                if d not in open_dirs and (not after or d > after):
                    yield FileRec(d, None, None)
            open_dirs = set(dirs)
            yield self._file(*row)

    def _walk_backward(self, scan: MergedScan, prefix: str, after: str) -> Iterator[FileRec]:
        open_dirs: list[str] = []
        while True:
            row = scan.next()
            if row is None:
                break
            dirs = _ancestors(row[0], len(prefix))
            while open_dirs and open_dirs[-1] not in dirs:
                yield FileRec(open_dirs.pop(), None, None)
            for d in dirs:
                if d not in open_dirs:
                    open_dirs.append(d)
            yield self._file(*row)
        while open_dirs:
            yield FileRec(open_dirs.pop(), None, None)
        if not after or prefix < after:
            yield FileRec(prefix, None, None)

    def glob(self, pattern: str) -> Iterator[FileRec]:
        """Files and directories matching a glob (``*``, ``**``, ``?``, ``[...]``)."""
        if not pattern.startswith("/"):
            pattern = "/" + pattern
        literal = re.split(r"[*?\[\\{]", pattern, maxsplit=1)[0]
        if literal == pattern:
            found = self.lookup(pattern)
            if found is not None:
                yield found
            return
        matcher = _compile_glob(pattern)
        max_depth = None if "**" in pattern else pattern.rstrip("/").count("/")
        scan = MergedScan(self._db, self.segments, literal, literal + _scan.TOP)
        open_dirs: set[str] = set()
        while True:
            row = scan.next()
            if row is None:
                return
            dirs = _ancestors(row[0], 1)
            for d in dirs:
                depth = d.count("/") - 1
                if max_depth is not None and depth > max_depth:
                    break
                if d not in open_dirs and matcher.fullmatch(d[:-1]):
                    yield FileRec(d, None, None)
                if max_depth is not None and depth == max_depth:
                    scan.skip_dir(d)
                    break
            else:
                if (max_depth is None or row[0].count("/") <= max_depth) and matcher.fullmatch(
                    row[0]
                ):
                    yield self._file(*row)
            open_dirs = set(dirs)


def _ancestors(path: str, start: int) -> list[str]:
    """The directories (with trailing '/') containing ``path``, below index ``start``."""
    result = []
    i = path.find("/", start)
    while i >= 0:
        result.append(path[: i + 1])
        i = path.find("/", i + 1)
    return result


def _bounds(
    lo: str, hi: str, after: str, reverse: bool, skip_dir_contents: bool
) -> tuple[str, str]:
    """Scan bounds for an exclusive pagination marker ``after``."""
    if not after:
        return lo, hi
    if reverse:
        return lo, min(hi, after)
    if after.endswith("/") and skip_dir_contents:
        return max(lo, dir_upper(after)), hi
    return max(lo, after + "\x00"), hi


def _compile_glob(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            if pattern.startswith("**", i):
                out.append(".*")
                i += 2
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = pattern.find("]", i + 1)
            if j < 0:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : j]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = j + 1
                continue
        elif c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        else:
            out.append(re.escape(c))
        i += 1
    try:
        return re.compile("".join(out), re.DOTALL)
    except re.error as e:
        raise _errors.unknown(f"invalid glob pattern {pattern!r}: {e}") from None


def _file_after(found: FileRec, after: str, reverse: bool) -> Iterator[FileRec]:
    """A listing of a path that names a file: the file itself, if past the marker."""
    if not after or (found.path < after if reverse else found.path > after):
        yield found
