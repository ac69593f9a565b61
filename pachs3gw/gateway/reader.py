"""Object bytes on their way out: GetFile from an offset, stopped after a length."""

from __future__ import annotations

import threading
from typing import Iterator

from twisted.internet.defer import Deferred
from zope.interface import implementer

from pachs3gw.pfs.client import FileReader, PfsClient
from pachs3gw.proto import pfs_v2_pb2 as pfs
from pachs3gw.s3 import errors
from pachs3gw.s3.interfaces import IObjectReader, ObjectInfo

#: Largest piece handed to the HTTP layer (pachd sends up to 19 MiB messages).
PIECE_BYTES = 1024 * 1024


@implementer(IObjectReader)
class PfsObjectReader:
    """Reads one file at one fixed commit, so a concurrent overwrite cannot mix versions.

    Threads: ``read`` is iterated on a worker thread; ``cancel`` may be
    called from any thread (it cancels every GetFile call started).
    """

    def __init__(self, client: PfsClient, file: pfs.File, info: ObjectInfo) -> None:
        self.info = info
        self._client = client
        self._file = file
        self._lock = threading.Lock()
        self._readers: list[FileReader] = []
        self._cancelled = False

    def read(self, offset: int, length: int) -> Iterator[bytes]:
        """*Worker thread.* ``length`` bytes from ``offset``, in pieces of at most 1 MiB."""
        if length <= 0:
            return
        reader = self._client.open_file(self._file, offset)
        with self._lock:
            if self._cancelled:
                reader.cancel()
                return
            self._readers.append(reader)
        remaining = length
        try:
            for message in reader:
                if len(message) <= min(PIECE_BYTES, remaining):
                    # The usual case (pfsd sends 1 MiB messages): no copy.
                    remaining -= len(message)
                    yield message
                    if remaining == 0:
                        return
                    continue
                view = memoryview(message)
                for start in range(0, len(view), PIECE_BYTES):
                    piece = view[start : start + min(PIECE_BYTES, remaining)]
                    remaining -= len(piece)
                    yield bytes(piece)
                    if remaining == 0:
                        return
        finally:
            reader.cancel()
            with self._lock:
                if reader in self._readers:
                    self._readers.remove(reader)
        if remaining and not self._cancelled:
            raise errors.InternalError(
                f"{self.info.key}: the file ended {remaining} bytes early"
            )

    def read_small(self, offset: int, length: int) -> Deferred[bytes]:
        """*Reactor thread.* One GetFile drained at once (in process: on this thread)."""
        got = self._client.read_file(self._file, offset, length)

        def check(data: bytes) -> bytes:
            if len(data) != length:
                raise errors.InternalError(
                    f"{self.info.key}: the file ended {length - len(data)} bytes early"
                )
            return data

        return got.addCallback(check)

    def cancel(self) -> None:
        """*Any thread.*"""
        with self._lock:
            self._cancelled = True
            readers = list(self._readers)
        for reader in readers:
            reader.cancel()
