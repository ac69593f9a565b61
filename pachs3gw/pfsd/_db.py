"""The metadata database: a connection per reading thread, one group-committed writer, a read cache.

SQLite in WAL mode. A write that finishes a commit (or changes anything
outside an open commit) is *durable*: the WAL is synced before it returns,
as ``synchronous=FULL`` would, so a ModifyFile acknowledged after its commit
survives ``kill -9`` and power loss. A write that only changes an open
commit (StartCommit, a ModifyFile into it, ClearCommit) is not synced: it
survives ``kill -9`` (its pages are in the WAL file, in the OS cache), and a
power loss at worst takes back the open commit's latest changes -- the WAL
is written in order, so the sync of a later durable write (at the latest the
FinishCommit) makes it durable too. That is what makes an S3 PUT, which
writes into its own open commit, cost one WAL sync instead of three. Readers use their own thread's connection and never wait for
writers; writes take turns on one connection (SQLite allows one writer
anyway, and taking turns avoids busy-waiting), sharing transactions (group
commit, :meth:`Database.write`). The bytes of an upload are written to
chunk files *before* its write takes its turn, so turns hold metadata only.

The read cache is here too because its one rule is tied to the commit: the
write that commits replaces it before any writer in the batch returns.

Every method runs on the calling thread (a gRPC worker thread, or the
in-process caller's); each thread gets its own connection.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from contextlib import contextmanager
from typing import Any, Iterator, Optional

from pachs3gw.pfsd import _errors, _refcounts, _rows
from pachs3gw.pfsd._content import Content
from pachs3gw.pfsd._records import CommitRec, CommitRef

#: Writes that share one transaction at most (group commit).
MAX_BATCH_WRITES = 64
#: Entries the read cache holds before it starts over.
READ_CACHE_ENTRIES = 50_000


def _remember(cache: dict[tuple[Any, ...], Any], key: tuple[Any, ...], value: Any) -> None:
    if len(cache) >= READ_CACHE_ENTRIES:
        cache.clear()
    cache[key] = value


def _storage_error(error: BaseException) -> BaseException:
    """A full disk as SQLite reports it becomes the storage-full PFS error; others stay."""
    if isinstance(error, (sqlite3.Error, OSError)) and _errors.is_storage_full(error):
        return _errors.storage_full(f"writing metadata: {error}")
    return error


def _rollback(db: sqlite3.Connection) -> None:
    """ROLLBACK what is still open (SQLite ends some transactions itself, e.g. on SQLITE_FULL)."""
    if db.in_transaction:
        db.execute("ROLLBACK")


class Database:
    """The SQLite database at ``path`` (schema not included: the store creates it)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        # Group commit (see write): one connection for every write, and who
        # is writing, which transaction is open, and what became durable.
        self._wdb = self._connect()
        self._wcond = threading.Condition()
        self._writing = False
        self._waiting = 0
        self._open_batch: Optional[int] = None
        self._batches = 0
        self._batch_writes = 0
        self._batch_durable = False
        self._durable = 0
        self._wal: Optional[int] = None
        self._failed: dict[int, BaseException] = {}
        #: Answers of read helpers, valid until the next write commits (the
        #: write that commits replaces the dict before it returns, so a read
        #: that starts after a write was acknowledged never sees older state).
        self._read_cache: dict[tuple[Any, ...], Any] = {}

    # connections and transactions ---------------------------------------

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=60)
        db.execute("PRAGMA journal_mode=WAL")
        # NORMAL: COMMIT writes the WAL without syncing it; write() syncs it
        # for durable batches (_sync_wal), which is what FULL does on each.
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA cache_size=-16000")
        with self._connections_lock:
            self._connections.append(db)
        return db

    def connection(self) -> sqlite3.Connection:
        """This thread's connection; inside a write, the write connection."""
        if getattr(self._local, "writing", False):
            return self._wdb
        db: Optional[sqlite3.Connection] = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = self._connect()
        return db

    @contextmanager
    def write(self, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """A write, committed when this returns; nested uses join the outer one.

        ``durable``: synced to disk before this returns (see the module doc);
        a write that learns inside that it must be calls :meth:`make_durable`.

        Group commit: writers take turns on one connection. Each runs in a
        savepoint of the open transaction (a failed write rolls back only
        its own changes); a writer that sees others waiting hands the
        transaction on instead of committing, and the last one in line
        commits for all: one COMMIT (one fsync) for every write that queued
        behind it. Each waits until its own batch is on disk, and nothing of
        a batch is visible before that.
        """
        if getattr(self._local, "writing", False):
            if durable:
                self._batch_durable = True
            yield self._wdb
            return
        db = self._wdb
        with self._wcond:
            self._waiting += 1
            while self._writing:
                self._wcond.wait()
            self._waiting -= 1
            self._writing = True
        self._local.writing = True
        error: Optional[BaseException] = None
        batch = 0
        try:
            try:
                if self._open_batch is None:
                    db.execute("BEGIN IMMEDIATE")
                    self._batches += 1
                    self._open_batch = self._batches
                    self._batch_writes = 0
                    self._batch_durable = False
                batch = self._open_batch
                if durable:
                    self._batch_durable = True
                self._batch_writes += 1
                db.execute("SAVEPOINT write")
            except sqlite3.Error as e:
                _rollback(db)
                self._open_batch = None
                raise _storage_error(e) from e
            try:
                yield db
            except BaseException as e:
                error = e
                if db.in_transaction:
                    db.execute("ROLLBACK TO write")
                    db.execute("RELEASE write")
                else:  # SQLite gave up the whole transaction (e.g. a full disk)
                    self._failed[batch] = _storage_error(e)
                    self._open_batch = None
            else:
                db.execute("RELEASE write")
        finally:
            self._local.writing = False
            with self._wcond:
                if self._open_batch is not None and (
                    self._waiting == 0 or self._batch_writes >= MAX_BATCH_WRITES
                ):
                    self._commit_batch(db)
                self._writing = False
                self._wcond.notify_all()
        if error is not None:
            raise _storage_error(error)
        with self._wcond:
            while self._durable < batch and batch not in self._failed:
                self._wcond.wait()
            failed = self._failed.get(batch)
        if failed is not None:
            raise failed

    def make_durable(self) -> None:
        """*Inside a write, on its thread.* Have the open batch synced when it commits."""
        assert getattr(self._local, "writing", False), "make_durable outside a write"
        self._batch_durable = True

    def _commit_batch(self, db: sqlite3.Connection) -> None:
        """*Holding _wcond.* Commit the open transaction for every write in it."""
        batch = self._open_batch
        assert batch is not None
        self._open_batch = None
        try:
            db.execute("COMMIT")
            if self._batch_durable:
                self._sync_wal()
        except BaseException as e:
            _rollback(db)
            self._failed[batch] = _storage_error(e)
            if len(self._failed) > 1000:
                self._failed.pop(min(self._failed))
            return
        self._durable = batch
        self._read_cache = {}

    def _sync_wal(self) -> None:
        """*Holding _wcond.* fdatasync the WAL file, as ``synchronous=FULL`` does on COMMIT.

        SQLite keeps the WAL file (same inode) while connections are open;
        should it have been replaced, the new one's directory entry is synced
        too.
        """
        path = self.path + "-wal"
        inode = os.stat(path).st_ino
        if self._wal is None or os.fstat(self._wal).st_ino != inode:
            if self._wal is not None:
                os.close(self._wal)
            self._wal = os.open(path, os.O_RDONLY)
            directory = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        os.fdatasync(self._wal)

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for multi-statement reads."""
        db = self.connection()
        if db.in_transaction or db is self._wdb:
            yield db
            return
        db.execute("BEGIN")
        try:
            yield db
        finally:
            db.execute("COMMIT")

    def close(self) -> None:
        """Close every connection (no call may be running)."""
        with self._connections_lock:
            for db in self._connections:
                try:
                    db.close()
                except sqlite3.Error:
                    pass
            self._connections.clear()
        if self._wal is not None:
            os.close(self._wal)
            self._wal = None

    def inline_chunk(self, address: bytes) -> Optional[bytes]:
        """The bytes of a committed inline chunk (``_chunks``), on this thread's connection."""
        row = self.connection().execute(
            "SELECT data FROM inline_chunks WHERE address=?", (address,)
        ).fetchone()
        return None if row is None else bytes(row[0])

    # the read cache -------------------------------------------------------

    def resolve(self, ref: CommitRef) -> CommitRec:
        """``_rows.resolve`` for readers, from the read cache."""
        cache = self._read_cache
        key = ("resolve", ref.project, ref.repo, ref.branch, ref.id)
        found = cache.get(key)
        if found is None:
            with self.read() as db:
                found = _rows.resolve(db, ref)
            _remember(cache, key, found)
        return found

    def cached_content(self, db: sqlite3.Connection, content_id: int) -> Content:
        """``_refcounts.content`` for readers, from the read cache."""
        cache = self._read_cache
        key = ("content", content_id)
        found = cache.get(key)
        if found is None:
            found = _refcounts.content(db, content_id)
            _remember(cache, key, found)
        return found

    def cached_committed_time(self, db: sqlite3.Connection, lineage: int, depth: int) -> Optional[float]:
        """``_rows.committed_time`` for readers, from the read cache."""
        cache = self._read_cache
        key = ("time", lineage, depth)
        if key in cache:
            return cache[key]
        found = _rows.committed_time(db, lineage, depth)
        _remember(cache, key, found)
        return found
