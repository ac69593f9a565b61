"""One ModifyFile stream, turned into per-path edits while its bytes stream in.

Bytes go straight into 4 MiB chunk files as they arrive (memory stays at
one chunk per stream), shared by all the files of the stream so that many
small files make few chunk files. Nothing becomes visible until
``Store.modify`` commits the edits; if the stream fails, the chunks this
upload created are discarded.

A chunk holding one file's bytes from a block boundary is addressed by the
hash of that file's block digests (already computed for the file hash), so
a big upload is hashed once, not twice. Other chunks are addressed by the
hash of their bytes. The two address spaces are kept apart by a prefix.
"""

from __future__ import annotations

import hashlib
import struct
from collections import deque
from concurrent.futures import Future
from typing import Any, Optional, Union

from pachs3gw.pfsd import _content
from pachs3gw.pfsd._chunks import CHUNK_SIZE
from pachs3gw.pfsd._content import BLOCK, DIGEST, EXTENT, BlockHasher, Content
from pachs3gw.pfsd._records import CommitRef, Edit, clean_path
from pachs3gw.pfsd._store import Store
from pachs3gw.pfsd._tree import Tree


#: Chunks of one upload being written while it keeps receiving.
_IN_FLIGHT = 1


class _Pack:
    """The chunk being filled."""

    __slots__ = ("data", "address", "sole", "sole_start")

    def __init__(self) -> None:
        self.data: Optional[bytearray] = bytearray()
        self.address: Optional[bytes] = None
        self.sole: Optional[_Pending] = None
        self.sole_start = 0


class _Pending:
    """Bytes appended to one path by consecutive AddFile messages."""

    __slots__ = ("hasher", "pieces", "size")

    def __init__(self) -> None:
        self.hasher = BlockHasher()
        #: ``[pack, offset, length]``, mutable: a piece grows while it stays contiguous.
        self.pieces: list[list[Any]] = []
        self.size = 0

    def content(self) -> Content:
        extents = b"".join(
            EXTENT.pack(pack.address, offset, length) for pack, offset, length in self.pieces
        )
        return _content.make(self.size, extents, self.hasher.digests())


Part = Union[Content, _Pending]


class Upload:
    """Collects the operations of one ModifyFile stream (one worker thread)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.lease = store.chunks.lease()
        self._edits: dict[str, Edit] = {}
        self._edited_dirs: set[str] = set()
        self._deleted_dirs: set[str] = set()
        self._pack = _Pack()
        self._current: Optional[_Pending] = None
        self._current_path = ""
        self._writes: deque[Future[bytes]] = deque()

    # operations -----------------------------------------------------------

    def _edit(self, path: str) -> Edit:
        edit = self._edits.get(path)
        if edit is None:
            reset = any(d in self._deleted_dirs for d in _dirs_of(path))
            edit = self._edits[path] = Edit(reset=reset)
            self._edited_dirs.update(_dirs_of(path))
        return edit

    def add(self, path: str, data: bytes) -> None:
        """AddFile: append ``data`` (maybe empty) to ``path``."""
        if self._current is None or self._current_path != path:
            path = clean_path(path)
            if path == "/":
                raise _invalid_path(path)
            self._current = _Pending()
            self._current_path = path
            # A _Pending until finish() turns it into the Content that Edit.parts holds.
            self._edit(path).parts.append(self._current)  # type: ignore[arg-type]
        if data:
            self._feed(self._current, data)

    def delete(self, path: str) -> None:
        """DeleteFile: the file at ``path`` and everything under it as a directory."""
        path = clean_path(path)
        self._current = None
        prefix = "/" if path == "/" else path + "/"
        if path != "/":
            self._edits[path] = Edit(reset=True)
            self._edited_dirs.update(_dirs_of(path))
        if prefix in self._edited_dirs:
            for p in [p for p in self._edits if p.startswith(prefix)]:
                self._edits[p] = Edit(reset=True)
        self._deleted_dirs.add(prefix)

    def copy(self, dst: str, src: CommitRef, src_path: str, append: bool) -> None:
        """CopyFile: a file or a whole directory, by reference (metadata only)."""
        dst = clean_path(dst)
        self._current = None
        tree = Tree(self._store, self._store.resolve(src))
        found = tree.inspect(src_path)
        if found.is_dir:
            base = "/" if dst == "/" else dst + "/"
            files = [(base + f.path[len(found.path) :], f) for f in tree.walk(found.path) if not f.is_dir]
        else:
            files = [(dst, found)]
        for path, f in files:
            assert f.content is not None
            if path == "/":
                raise _invalid_path(path)
            self._store.chunks.hold(self.lease, f.content.chunk_addresses())
            edit = self._edit(path)
            if not append:
                edit.reset = True
                edit.parts = []
            edit.parts.append(f.content)

    # bytes ---------------------------------------------------------------

    def _feed(self, pending: _Pending, data: bytes) -> None:
        pending.hasher.update(data)
        view = memoryview(data)
        while len(view):
            pack = self._pack
            assert pack.data is not None
            if not pack.data:
                pack.sole = pending
                pack.sole_start = pending.size
            elif pack.sole is not pending:
                pack.sole = None
            take = min(CHUNK_SIZE - len(pack.data), len(view))
            offset = len(pack.data)
            pack.data += view[:take]
            last = pending.pieces[-1] if pending.pieces else None
            if last is not None and last[0] is pack and last[1] + last[2] == offset:
                last[2] += take
            else:
                pending.pieces.append([pack, offset, take])
            pending.size += take
            view = view[take:]
            if len(pack.data) == CHUNK_SIZE:
                self._flush()

    def _flush(self) -> None:
        pack = self._pack
        assert pack.data is not None
        if not pack.data:
            return
        address = None
        sole = pack.sole
        if sole is not None and pack.sole_start % BLOCK == 0:
            digests = sole.hasher.digests()
            first = pack.sole_start // BLOCK
            count = -(-len(pack.data) // BLOCK)
            blocks = digests[first * DIGEST : (first + count) * DIGEST]
            if len(blocks) == count * DIGEST and (
                len(pack.data) % BLOCK == 0 or pack.sole_start + len(pack.data) == sole.size
            ):
                address = hashlib.sha256(
                    b"B" + struct.pack(">Q", len(pack.data)) + blocks
                ).digest()
        if address is None:
            h = hashlib.sha256(b"R")
            h.update(pack.data)
            address = h.digest()
        pack.address = address
        self._writes.append(self._store.chunks.put(self.lease, pack.data, address))
        while len(self._writes) > _IN_FLIGHT:
            self._writes.popleft().result()
        pack.data = None
        pack.sole = None
        self._pack = _Pack()

    # end of stream ------------------------------------------------------------

    def finish(self) -> tuple[dict[str, Edit], list[str]]:
        """Make every byte durable and return the edits for ``Store.modify``."""
        self._flush()
        while self._writes:
            self._writes.popleft().result()
        for edit in self._edits.values():
            edit.parts = [
                p.content() if isinstance(p, _Pending) else p for p in edit.parts
            ]
        return self._edits, sorted(self._deleted_dirs)

    def committed(self) -> None:
        self.lease.release()

    def abort(self) -> None:
        for write in self._writes:
            try:
                write.result()
            except Exception:
                pass
        self._store.discard(self.lease)


def _dirs_of(path: str) -> list[str]:
    result = []
    i = path.find("/")
    while i >= 0:
        result.append(path[: i + 1])
        i = path.find("/", i + 1)
    return result


def _invalid_path(path: str) -> Exception:
    from pachs3gw.pfsd import _errors

    return _errors.invalid_argument(f"invalid path {path!r}: cannot write to a directory")
