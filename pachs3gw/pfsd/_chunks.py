"""Content-addressed chunks: the bytes of every file.

A chunk is written to a temporary file, fsynced, renamed to its address and
its directory fsynced, so a chunk that exists under its name is complete.
A chunk of at most :data:`INLINE_BYTES` (a small object's whole body) is
not a file: its bytes go into the metadata database (``inline_chunks``), in
the transaction that commits the write, so a small PUT costs no chunk fsyncs
at all (two, file and directory, were half of its syncs). The upload keeps
them in its :class:`Lease` until then; :meth:`ChunkStore.read` finds them
through the ``read_inline`` hook the store sets.
Chunks are immutable. Which chunks are still needed is known only to the
metadata store (reference counts); this module deletes a chunk only when
asked to *and* no upload in flight holds a lease on it, which closes the race
between an upload that found a chunk already present (and skipped writing
it) and a collector that found it unreferenced.
"""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterable

from pachs3gw.pfsd._errors import is_storage_full, storage_full

#: Upload chunk size: big enough that per-chunk costs (fsync, rename, a
#: metadata row) vanish, small enough to keep memory flat.
CHUNK_SIZE = 4 << 20
#: Chunks up to this size are written on the caller's thread.
INLINE_WRITE_BYTES = 256 << 10
#: Chunks up to this size are kept in the metadata database, not in files.
INLINE_BYTES = 32 << 10


class Lease:
    """The chunks one upload relies on until its commit is durable (any thread)."""

    def __init__(self, store: "ChunkStore") -> None:
        self._store = store
        self.addresses: list[bytes] = []
        #: Chunks this upload created; removed again if the upload fails.
        self.created: list[bytes] = []
        #: Small chunks to be stored with the commit (address → bytes).
        self.inline: dict[bytes, bytes] = {}

    def release(self, failed: bool = False) -> None:
        self._store._release(self, failed)


class ChunkStore:
    """Chunk files under ``root``; every method may run on any thread."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._tmp = os.path.join(root, "tmp")
        os.makedirs(self._tmp, exist_ok=True)
        #: Temporary files of writes a previous run did not finish (removed).
        self.recovered_temp = 0
        for name in os.listdir(self._tmp):
            os.unlink(os.path.join(self._tmp, name))
            self.recovered_temp += 1
        for i in range(256):
            os.makedirs(os.path.join(root, "%02x" % i), exist_ok=True)
        _fsync_dir(root)
        self._lock = threading.Lock()
        self._leases: dict[bytes, int] = {}
        self._writers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="pfsd-chunk")
        #: The bytes of an inline chunk committed to the database (None: not there).
        self.read_inline: Callable[[bytes], bytes | None] = lambda address: None

    def _exists(self, address: bytes) -> bool:
        return os.path.exists(self.path(address)) or self.read_inline(address) is not None

    def path(self, address: bytes) -> str:
        h = address.hex()
        return os.path.join(self.root, h[:2], h[2:])

    def lease(self) -> Lease:
        return Lease(self)

    def hold(self, lease: Lease, addresses: Iterable[bytes]) -> None:
        """Protect existing chunks (e.g. a CopyFile source) from collection.

        Raises FileNotFoundError if one of them is already gone.
        """
        with self._lock:
            for address in addresses:
                if not self._exists(address):
                    raise FileNotFoundError(address.hex())
                self._leases[address] = self._leases.get(address, 0) + 1
                lease.addresses.append(address)

    def put(
        self, lease: Lease, data: bytes | bytearray | memoryview, address: bytes | None = None
    ) -> "Future[bytes]":
        """Store ``data`` durably, in the background; the future gives its address.

        Writing and fsyncing happen on the store's writer threads (they
        release the GIL), so an upload keeps receiving while its previous
        chunks go to disk. ``address`` defaults to the sha256 of ``data``.
        """
        if address is None:
            address = hashlib.sha256(data).digest()
        final = self.path(address)
        with self._lock:
            self._leases[address] = self._leases.get(address, 0) + 1
            lease.addresses.append(address)
            exists = os.path.exists(final)
        if not exists and len(data) <= INLINE_BYTES:
            # Stored with the commit (see the module doc); an inline copy
            # already committed is kept, this one ignored.
            lease.inline[address] = bytes(data)
            done_inline: Future[bytes] = Future()
            done_inline.set_result(address)
            return done_inline
        if exists or len(data) <= INLINE_WRITE_BYTES:
            # Small chunks are written here: a hop to a writer thread costs
            # more than the write, and there is nothing to overlap it with.
            done: Future[bytes] = Future()
            try:
                done.set_result(address if exists else self._write(lease, data, address, final))
            except BaseException as e:
                done.set_exception(e)
            return done
        return self._writers.submit(self._write, lease, data, address, final)

    def _write(
        self, lease: Lease, data: bytes | bytearray | memoryview, address: bytes, final: str
    ) -> bytes:
        tmp = os.path.join(self._tmp, uuid.uuid4().hex)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                view = memoryview(data)
                while len(view):
                    n = os.write(fd, view)
                    view = view[n:]
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as e:
            if os.path.exists(tmp):
                os.unlink(tmp)
            if is_storage_full(e):
                raise storage_full(f"writing a chunk: {e.strerror}") from e
            raise
        os.rename(tmp, final)
        _fsync_dir(os.path.dirname(final))
        lease.created.append(address)
        return address

    def close(self) -> None:
        self._writers.shutdown(wait=True)

    def read(self, address: bytes, offset: int, length: int) -> bytes:
        small = offset + length <= INLINE_BYTES
        if small:
            # Within the first INLINE_BYTES: most likely a small object's inline
            # chunk, so the database first (a failed open and its exception cost
            # more than a missed lookup).
            data = self.read_inline(address)
            if data is not None:
                return data[offset : offset + length]
        try:
            fd = os.open(self.path(address), os.O_RDONLY)
        except FileNotFoundError:
            data = None if small else self.read_inline(address)
            if data is None:
                raise
            return data[offset : offset + length]
        try:
            return os.pread(fd, length, offset)
        finally:
            os.close(fd)

    def _release(self, lease: Lease, failed: bool) -> None:
        with self._lock:
            for address in lease.addresses:
                n = self._leases[address] - 1
                if n:
                    self._leases[address] = n
                else:
                    del self._leases[address]
        lease.addresses = []

    def collect(self, address: bytes, still_unreferenced: Callable[[bytes], bool]) -> bool:
        """Delete a chunk if no lease holds it and the store confirms it is unused.

        ``still_unreferenced`` is asked under the lease lock, so an upload
        cannot start relying on the chunk between the check and the unlink.
        """
        with self._lock:
            if address in self._leases:
                return False
            if not still_unreferenced(address):
                return False
            try:
                os.unlink(self.path(address))
            except FileNotFoundError:
                pass
            return True

    def all_addresses(self) -> Iterable[bytes]:
        for i in range(256):
            d = os.path.join(self.root, "%02x" % i)
            for name in os.listdir(d):
                try:
                    yield bytes.fromhex("%02x" % i + name)
                except ValueError:
                    continue


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
