"""DiffFile: what changed between two commits, with pachd's semantics.

pachd (``Driver.DiffFile``) walks both trees under a path, directories
included, and reports every path whose hash differs: ``(old, new)`` when
both sides have it, ``(None, new)`` when added, ``(old, None)`` when
removed, in path order. A directory's hash is made of its children's, so a
directory is reported exactly when something below it is.

Here the changed files come from the store's lineage index (see
``_scan.changed_paths``): the cost follows the number of changes between
the two commits, not the size of the tree or of the history. Directories
are derived from the changed files; like pfsd's listings, their FileInfo
carries no size or hash (pachd's would need the whole subtree).
"""

from __future__ import annotations

from typing import Iterator, Optional

from pachs3gw.pfsd import _scan
from pachs3gw.pfsd._records import CommitRec, FileRec, clean_path
from pachs3gw.pfsd._store import Store
from pachs3gw.pfsd._tree import Tree

#: One changed path: (old, new); one side may be None.
Change = tuple[Optional[FileRec], Optional[FileRec]]


def _scope(path: str) -> str:
    """pachd's filter: ``path`` itself and everything below it ("" = all)."""
    cleaned = clean_path(path or "/")
    return "" if cleaned == "/" else cleaned


def _within(path: str, scope: str) -> bool:
    return not scope or path == scope or path.startswith(scope + "/")


class Side:
    """One side of a diff: a commit's tree (or nothing) under a path."""

    def __init__(self, store: Store, commit: Optional[CommitRec], path: str) -> None:
        self.tree = Tree(store, commit) if commit is not None else None
        self.scope = _scope(path)
        self._dirs: dict[str, bool] = {}

    @property
    def segments(self) -> _scan.Segments:
        return self.tree.segments if self.tree is not None else ()

    def file(self, path: str) -> Optional[FileRec]:
        if self.tree is None or not _within(path, self.scope):
            return None
        return self.tree.regular(path)

    def has_dir(self, prefix: str) -> bool:
        if self.tree is None or not _within(prefix, self.scope):
            return False
        if prefix not in self._dirs:
            self._dirs[prefix] = self.tree.is_dir(prefix)
        return self._dirs[prefix]


def diff(
    store: Store, new: CommitRec, new_path: str, old: Optional[CommitRec], old_path: str
) -> Iterator[Change]:
    """The changes from ``old`` (None: an empty tree) to ``new``, in path order."""
    new_side = Side(store, new, new_path)
    old_side = Side(store, old, old_path)
    db = store.reader()
    reported: set[str] = set()
    for path in _scan.changed_paths(db, old_side.segments, new_side.segments):
        before, after = old_side.file(path), new_side.file(path)
        if before is None and after is None:
            continue
        if before is not None and after is not None:
            assert before.content is not None and after.content is not None
            if before.content.hash == after.content.hash:
                continue
        for directory in _ancestors(path):
            if directory in reported:
                continue
            reported.add(directory)
            had = before is not None and _within(directory, old_side.scope)
            has = after is not None and _within(directory, new_side.scope)
            had = had or old_side.has_dir(directory)
            has = has or new_side.has_dir(directory)
            if had or has:
                yield (
                    FileRec(directory, None, None) if had else None,
                    FileRec(directory, None, None) if has else None,
                )
        yield before, after


def _ancestors(path: str) -> Iterator[str]:
    """The directories containing ``path``, outermost first: "/", "/a/", ..."""
    i = path.find("/")
    while i >= 0:
        yield path[: i + 1]
        i = path.find("/", i + 1)
