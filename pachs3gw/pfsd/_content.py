"""File contents as lists of extents, with a chunking-independent hash.

A file's bytes live in chunks; the file itself is only a list of extents
``(chunk address, offset, length)``. Copying or appending a file therefore
copies extent lists, never bytes.

The file hash must not depend on how the bytes were cut into chunks or
messages (the same bytes must give the same hash, whether PUT at once or
assembled from multipart parts). So it is a two-level hash over fixed
1 MiB blocks aligned to the *file* offset: ``sha256(concat(sha256(block_i)))``.
The per-block digests are kept with the content, which makes appending
metadata-only whenever the left side ends on a block boundary (S3 part
sizes are whole MiB in every client we know); an unaligned append re-hashes
the bytes after the last whole block of the left side.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Callable, Iterator, Optional

import attrs

#: Hash block size. Part sizes of S3 clients are multiples of it.
BLOCK = 1 << 20
#: One extent: chunk address (sha256), offset in the chunk, length.
EXTENT = struct.Struct(">32sQQ")
DIGEST = 32


@attrs.frozen
class Content:
    """The bytes of one file: extents and per-block digests.

    ``content_id`` is the metadata row this content was read from, if any:
    writing an unchanged content again (CopyFile overwrite) reuses the row.
    """

    size: int
    extents: bytes
    blocks: bytes
    hash: bytes
    content_id: Optional[int] = attrs.field(default=None, eq=False)

    def iter_extents(self) -> Iterator[tuple[bytes, int, int]]:
        return EXTENT.iter_unpack(self.extents)

    def chunk_addresses(self) -> list[bytes]:
        return [e[0] for e in self.iter_extents()]


def file_hash(blocks: bytes) -> bytes:
    return hashlib.sha256(blocks).digest()


def make(size: int, extents: bytes, blocks: bytes) -> Content:
    return Content(size=size, extents=extents, blocks=blocks, hash=file_hash(blocks))


EMPTY = make(0, b"", b"")

#: Reads ``length`` bytes at ``offset`` of a chunk.
ChunkReader = Callable[[bytes, int, int], bytes]


def join_extents(left: bytes, right: bytes) -> bytes:
    """Concatenate packed extent lists, merging touching extents of one chunk."""
    if not left:
        return right
    if not right:
        return left
    la, lo, ll = EXTENT.unpack_from(left, len(left) - EXTENT.size)
    ra, ro, rl = EXTENT.unpack_from(right, 0)
    if la == ra and lo + ll == ro:
        return (
            left[: -EXTENT.size]
            + EXTENT.pack(la, lo, ll + rl)
            + right[EXTENT.size :]
        )
    return left + right


def iter_bytes(
    extents: bytes, offset: int, read: ChunkReader, max_piece: int = 4 << 20
) -> Iterator[bytes]:
    """The bytes of an extent list from ``offset``, in pieces of at most ``max_piece``."""
    pos = 0
    for address, chunk_offset, length in EXTENT.iter_unpack(extents):
        if pos + length <= offset:
            pos += length
            continue
        skip = max(0, offset - pos)
        pos += length
        start = chunk_offset + skip
        remaining = length - skip
        while remaining > 0:
            n = min(remaining, max_piece)
            data = read(address, start, n)
            if len(data) != n:
                raise IOError(f"chunk {address.hex()} is truncated")
            yield data
            start += n
            remaining -= n


class BlockHasher:
    """Computes per-block digests of a byte stream fed in pieces of any size."""

    def __init__(self) -> None:
        self._digests: list[bytes] = []
        self._current = hashlib.sha256()
        self._filled = 0

    def update(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while len(view):
            take = min(len(view), BLOCK - self._filled)
            if take == BLOCK:
                self._digests.append(hashlib.sha256(view[:take]).digest())
            else:
                self._current.update(view[:take])
                self._filled += take
                if self._filled == BLOCK:
                    self._digests.append(self._current.digest())
                    self._current = hashlib.sha256()
                    self._filled = 0
            view = view[take:]

    def digests(self) -> bytes:
        """All digests so far, the partial last block included."""
        tail = [self._current.digest()] if self._filled else []
        return b"".join(self._digests + tail)


def concat(left: Content, right: Content, read: ChunkReader) -> Content:
    """``left`` followed by ``right``: metadata-only when ``left`` ends on a block."""
    if right.size == 0:
        return left
    if left.size == 0:
        return right
    extents = join_extents(left.extents, right.extents)
    size = left.size + right.size
    if left.size % BLOCK == 0:
        return make(size, extents, left.blocks + right.blocks)
    whole = left.size // BLOCK
    hasher = BlockHasher()
    for piece in iter_bytes(extents, whole * BLOCK, read):
        hasher.update(piece)
    return make(size, extents, left.blocks[: whole * DIGEST] + hasher.digests())
