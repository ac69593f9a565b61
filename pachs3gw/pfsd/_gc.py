"""Collecting chunks no content refers to, and the disk-space reserve that lets deletions commit.

Deleting a repo, a branch or a commit only drops rows and counts
(``_refcounts``); the chunk files go here, on a thread of their own
(``pfsd-gc``), woken by :attr:`Collector.wanted` after each deletion. A chunk
file is removed only when its count is zero *and* no upload in flight holds
a lease on it (``ChunkStore.collect``). At start-up the first run also
sweeps chunk files without any row: a crashed upload's.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from typing import Callable

import grpc
from twisted.logger import Logger

from pachs3gw.pfsd import _errors
from pachs3gw.pfsd._chunks import ChunkStore, Lease
from pachs3gw.pfsd._db import Database
from pachs3gw.pfsd._errors import PfsError

log = Logger()

#: Disk space kept aside so that a repo or branch can be deleted (and its
#: chunks collected) when the disk is full: see :func:`keep_reserve`.
RESERVE_BYTES = 8 << 20


def keep_reserve(reserve_path: str) -> None:
    """Set :data:`RESERVE_BYTES` aside in ``DATA/reserve``, if not already (best effort).

    On a full disk every write fails, including the SQLite transaction
    that deletes a repo or branch, which is how an operator frees space
    (the collector then removes the chunks).  :meth:`Collector.freeing` gives
    this reserve up to let such a deletion commit; it is set aside again
    after the next collection, once there is room.
    """
    if os.path.exists(reserve_path):
        return
    tmp = reserve_path + ".tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.posix_fallocate(fd, 0, RESERVE_BYTES)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, reserve_path)
    except OSError as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if not _errors.is_storage_full(e):
            raise


class Collector:
    """The chunk collector of one store (its thread, and the reserve at ``reserve_path``).

    Threads: :meth:`discard` and :meth:`freeing` run on the caller's (a
    worker thread, during a call); collections run on ``pfsd-gc``, and
    :meth:`collect_garbage` on whichever thread calls it.
    """

    def __init__(self, database: Database, chunks: ChunkStore, reserve_path: str) -> None:
        self._db = database.connection
        self._write = database.write
        self.chunks = chunks
        self._reserve_path = reserve_path
        #: Set it to have the collector run soon (after anything that dropped rows).
        self.wanted = threading.Event()
        self._closed = threading.Event()
        self._sweep_orphans = True
        self._thread = threading.Thread(target=self._loop, name="pfsd-gc", daemon=True)

    def start(self) -> None:
        """Start the collector thread; its first run sweeps orphaned chunk files."""
        self.wanted.set()
        self._thread.start()

    def close(self) -> None:
        """Stop the collector (a run in progress stops at its next chunk)."""
        self._closed.set()
        self.wanted.set()
        self._thread.join(timeout=10)

    def discard(self, lease: Lease) -> None:
        """Forget a failed upload's lease; the chunks it wrote go if unused."""
        created = list(lease.created)
        lease.release()
        for address in created:
            self.chunks.collect(address, self._unreferenced)

    def _unreferenced(self, address: bytes) -> bool:
        with self._write() as db:
            row = db.execute("SELECT refs FROM chunks WHERE address=?", (address,)).fetchone()
            if row is None:
                return True
            if row[0] > 0:
                return False
            try:
                db.execute("DELETE FROM chunks WHERE address=? AND refs<=0", (address,))
                db.execute("DELETE FROM inline_chunks WHERE address=?", (address,))
            except sqlite3.Error as e:
                if not _errors.is_storage_full(e):
                    raise
                # The file may go all the same (freeing space is the point);
                # the unreferenced row is dropped by a later collection.
            return True

    def collect_garbage(self) -> int:
        """Delete every chunk no content refers to; returns how many went."""
        db = self._db()
        freed = 0
        while not self._closed.is_set():
            rows = db.execute("SELECT address FROM chunks WHERE refs=0 LIMIT 500").fetchall()
            if not rows:
                break
            progress = False
            for (address,) in rows:
                if self.chunks.collect(address, self._unreferenced):
                    freed += 1
                    progress = True
            if not progress:
                break
        return freed

    def _sweep(self) -> int:
        """At start-up: chunk files without a metadata row (a crashed upload's); how many went."""
        db = self._db()
        removed = 0
        for address in self.chunks.all_addresses():
            if self._closed.is_set():
                break
            if db.execute("SELECT 1 FROM chunks WHERE address=?", (address,)).fetchone() is None:
                if self.chunks.collect(address, self._unreferenced):
                    removed += 1
        return removed

    def _loop(self) -> None:
        while not self._closed.is_set():
            self.wanted.wait()
            self.wanted.clear()
            if self._closed.is_set():
                break
            try:
                started = time.monotonic()
                orphans = 0
                if self._sweep_orphans:
                    self._sweep_orphans = False
                    orphans = self._sweep()
                    if orphans:
                        log.info("pfsd recovery removed {orphans} chunk(s) no metadata refers to", orphans=orphans)
                freed = self.collect_garbage()
                if freed:
                    log.info(
                        "pfsd GC removed {freed} unreferenced chunk(s) in {ms} ms",
                        freed=freed,
                        ms=round((time.monotonic() - started) * 1000, 1),
                    )
                keep_reserve(self._reserve_path)
            except Exception:  # pragma: no cover - keep collecting next time
                log.failure("garbage collection failed")

    def freeing(self, delete: Callable[[], None]) -> None:
        """Run a deletion; if the disk is full, release the reserve and run it again."""
        try:
            delete()
            return
        except PfsError as e:
            if e.code != grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise
            try:
                os.unlink(self._reserve_path)
            except FileNotFoundError:
                raise e from None
        log.warn("disk full: released the {reserved} reserved bytes to let a deletion commit", reserved=RESERVE_BYTES)
        delete()
