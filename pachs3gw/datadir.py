"""The embedded store's data directory: is it usable, and who owns it.

One process at a time may own a data directory: a second store on the same
files would sweep the first one's in-flight chunk files at start-up and
collect chunks the first one still leases.  :func:`lock_data_dir` takes an
exclusive ``flock`` on ``DIR/lock`` and writes the owner's pid into it.
The kernel drops a ``flock`` when its process dies, however it dies, so a
lock left by ``kill -9`` never blocks a restart; the pid in the file is only
there to name the holder in the error.

Whoever opens the store takes the lock (:class:`pachs3gw.pfsd.Store`), so
the rule holds for the supervised child, the in-process store and the
standalone ``python -m pachs3gw.pfsd`` alike.  The gateway also probes the
lock before it starts (:func:`probe_lock`) to fail at once, with the
holder's pid, instead of restarting a child that cannot open the store.

This module knows files and processes only: no Twisted, no PFS.
"""

from __future__ import annotations

import errno
import fcntl
import os

__all__ = ["DataDirError", "DataDirLock", "DataDirLocked", "check_data_dir", "lock_data_dir", "probe_lock"]

LOCK_NAME = "lock"


class DataDirError(Exception):
    """The data directory can't be used; the message names it and says why."""


class DataDirLocked(DataDirError):
    """Another live process owns the data directory."""

    def __init__(self, data_dir: str, holder: int | None) -> None:
        self.data_dir = data_dir
        self.holder = holder
        who = f"process {holder}" if holder else "another process"
        super().__init__(f"{data_dir} is in use by {who} (lock {os.path.join(data_dir, LOCK_NAME)})")


def check_data_dir(data_dir: str) -> str:
    """Create ``data_dir`` if needed and check that it is a writable directory.

    Returns its absolute path.  Every failure is a :class:`DataDirError`
    whose message reads well after ``--data-dir``.
    """
    path = os.path.abspath(data_dir)
    if os.path.exists(path) and not os.path.isdir(path):
        raise DataDirError(f"{path} exists and is not a directory")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise DataDirError(f"cannot create {path}: {e.strerror or e}") from None
    probe = os.path.join(path, f".write-test-{os.getpid()}")
    try:
        with open(probe, "w"):
            pass
        os.unlink(probe)
    except OSError as e:
        raise DataDirError(f"{path} is not writable: {e.strerror or e}") from None
    return path


class DataDirLock:
    """An exclusive lock on a data directory, held until :meth:`release`.

    The file descriptor is not inherited by child processes (Python opens
    files close-on-exec), so a process this one starts never holds it.
    """

    def __init__(self, data_dir: str, fd: int) -> None:
        self.data_dir = data_dir
        self._fd: int | None = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Drop the lock (idempotent).  The file stays: unlinking it would race a new owner."""
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)


def lock_data_dir(data_dir: str) -> DataDirLock:
    """Take the data directory's lock now, or raise :class:`DataDirLocked` at once."""
    path = os.path.abspath(data_dir)
    lock_path = os.path.join(path, LOCK_NAME)
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise DataDirError(f"cannot open {lock_path}: {e.strerror or e}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        holder = _read_pid(fd)
        os.close(fd)
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise DataDirLocked(path, holder) from None
        raise DataDirError(f"cannot lock {lock_path}: {e.strerror or e}") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    return DataDirLock(path, fd)


def probe_lock(data_dir: str) -> None:
    """Raise :class:`DataDirLocked` if a live process owns ``data_dir`` now."""
    if not os.path.exists(os.path.join(data_dir, LOCK_NAME)):
        return
    lock_data_dir(data_dir).release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
