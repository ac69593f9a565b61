"""An object's bytes streaming from the backend to the client, with flow control.

:class:`ObjectProducer` is an ``IPushProducer`` registered on the request.
A worker thread iterates :meth:`IObjectReader.read` and hands each piece to
the reactor thread, which writes it to the request; at most
``max_in_flight`` pieces wait in between.  While the transport has paused
us the worker keeps reading ahead up to that bound, and the pieces wait on
the reactor side, so the resume writes the next one at once instead of
waking the worker and waiting for a read (that gap idled the socket).  A
slow client holds a few MiB of memory, not the object.
"""

from __future__ import annotations

import collections
import threading

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from twisted.internet.interfaces import IPushProducer, IReactorFromThreads
from zope.interface import implementer

from pachs3gw.s3.http_interfaces import IS3Request
from pachs3gw.s3.interfaces import IObjectReader

__all__ = ["ObjectProducer", "DownloadStopped", "ShortRead", "SMALL_READ_BYTES"]

#: Responses up to this size are read at once (``IObjectReader.read_small``)
#: and written in one go: no producer, no worker thread.
SMALL_READ_BYTES = 256 * 1024


class DownloadStopped(Exception):
    """The client went away (``stopProducing``) before the download ended."""


class ShortRead(Exception):
    """The backend yielded fewer or more bytes than the response promised."""


@implementer(IPushProducer)
@attrs.define(eq=False)
class ObjectProducer:
    """Writes ``length`` bytes from ``offset`` of ``reader`` to ``request``.

    Call :meth:`start` on the reactor thread once the response headers are
    set; it returns a Deferred that fires with the number of bytes written
    when all of them were, or fails (:class:`DownloadStopped` if the client
    went away, the backend's exception, or :class:`ShortRead`).
    """

    reactor: IReactorFromThreads
    pool: ThreadPool
    reader: IObjectReader
    request: IS3Request
    offset: int
    length: int
    max_in_flight: int = 4

    _cond: threading.Condition = attrs.field(factory=threading.Condition, init=False)
    # Guarded by _cond:
    _stopped: bool = attrs.field(default=False, init=False)
    #: Pieces handed to the reactor and not yet written (the read-ahead).
    _in_flight: int = attrs.field(default=0, init=False)
    # Reactor thread only:
    _paused: bool = attrs.field(default=False, init=False)
    _written: int = attrs.field(default=0, init=False)
    #: Pieces that arrived while the transport was paused, written on resume.
    _ready: collections.deque[bytes] = attrs.field(factory=collections.deque, init=False)
    _drained: Deferred[None] | None = attrs.field(default=None, init=False)

    def start(self) -> Deferred[int]:
        """*Reactor thread.* Register as the request's producer and stream."""
        self.request.registerProducer(self, True)
        d = deferToThreadPool(self.reactor, self.pool, self._run)

        def all_read(_: None) -> Deferred[None] | None:
            # Every piece was delivered (callFromThread keeps order); some
            # may still wait for the transport.
            if self._ready and not self._stopped:
                self._drained = Deferred()
                return self._drained
            return None

        def finished(_: None) -> int:
            self._unregister()
            with self._cond:
                stopped = self._stopped
            if stopped:
                raise DownloadStopped()
            if self._written != self.length:
                raise ShortRead(f"wrote {self._written} of {self.length} bytes")
            return self._written

        def failed(f: Failure) -> Failure:
            self._unregister()
            return f

        return d.addCallback(all_read).addCallbacks(finished, failed)

    def _unregister(self) -> None:
        if not getattr(self.request, "disconnected", False) and self.request.producer is self:
            self.request.unregisterProducer()

    # IPushProducer, reactor thread ---------------------------------------------

    def pauseProducing(self) -> None:
        """*Reactor thread.* The transport's buffer is full: hold pieces back."""
        self._paused = True

    def resumeProducing(self) -> None:
        """*Reactor thread.* The transport wants more: write what was read ahead at once."""
        self._paused = False
        while self._ready and not self._paused:
            self._write(self._ready.popleft())
        if not self._ready and self._drained is not None:
            drained, self._drained = self._drained, None
            drained.callback(None)

    def stopProducing(self) -> None:
        """*Reactor thread.* The connection is gone: cancel the backend read."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._ready.clear()
        self.reader.cancel()
        if self._drained is not None:
            drained, self._drained = self._drained, None
            drained.callback(None)

    def _deliver(self, data: bytes) -> None:
        """*Reactor thread.* A piece from the worker: write it, or keep it for the resume."""
        with self._cond:
            stopped = self._stopped
        if stopped:
            self._done_with_piece()
        elif self._paused or self._ready:
            self._ready.append(data)
        else:
            self._write(data)

    def _write(self, data: bytes) -> None:
        self._written += len(data)
        self._done_with_piece()
        self.request.write(data)  # may call pauseProducing right away

    def _done_with_piece(self) -> None:
        with self._cond:
            self._in_flight -= 1
            self._cond.notify_all()

    # Worker thread ---------------------------------------------------------------

    def _run(self) -> None:
        """*Worker thread.* Iterate the reader, waiting whenever the client can't keep up."""
        sent = 0
        pieces = self.reader.read(self.offset, self.length)
        try:
            for piece in pieces:
                if not piece:
                    continue
                with self._cond:
                    # Read ahead while the transport is paused, up to
                    # max_in_flight pieces: the resume then writes at once.
                    while self._in_flight >= self.max_in_flight and not self._stopped:
                        self._cond.wait()
                    if self._stopped:
                        return
                    self._in_flight += 1
                sent += len(piece)
                if sent > self.length:
                    raise ShortRead(f"the backend yielded more than {self.length} bytes")
                self.reactor.callFromThread(self._deliver, piece)
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()
