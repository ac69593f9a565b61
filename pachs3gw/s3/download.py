"""An object's bytes streaming from the backend to the client, with flow control.

:class:`ObjectProducer` is an ``IPushProducer`` registered on the request.
A worker thread iterates :meth:`IObjectReader.read` and hands each piece to
the reactor thread, which writes it to the request; at most
``max_in_flight`` pieces wait in between, and the worker stops taking more
while the transport has paused us.  So a slow client holds a few MiB of
memory, not the object.
"""

from __future__ import annotations

import threading

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from twisted.web.http import Request
from twisted.internet.interfaces import IPushProducer, IReactorFromThreads
from zope.interface import implementer

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
    request: Request
    offset: int
    length: int
    max_in_flight: int = 4

    _cond: threading.Condition = attrs.field(factory=threading.Condition, init=False)
    # Guarded by _cond:
    _paused: bool = attrs.field(default=False, init=False)
    _stopped: bool = attrs.field(default=False, init=False)
    _in_flight: int = attrs.field(default=0, init=False)
    # Reactor thread only:
    _written: int = attrs.field(default=0, init=False)

    def start(self) -> Deferred[int]:
        """*Reactor thread.* Register as the request's producer and stream."""
        self.request.registerProducer(self, True)
        d = deferToThreadPool(self.reactor, self.pool, self._run)

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

        return d.addCallbacks(finished, failed)

    def _unregister(self) -> None:
        if not getattr(self.request, "disconnected", False) and self.request.producer is self:
            self.request.unregisterProducer()

    # IPushProducer, reactor thread ---------------------------------------------

    def pauseProducing(self) -> None:
        """*Reactor thread.* The transport's buffer is full."""
        with self._cond:
            self._paused = True

    def resumeProducing(self) -> None:
        """*Reactor thread.* The transport wants more."""
        with self._cond:
            self._paused = False
            self._cond.notify_all()

    def stopProducing(self) -> None:
        """*Reactor thread.* The connection is gone: cancel the backend read."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self.reader.cancel()

    def _deliver(self, data: bytes) -> None:
        """*Reactor thread.* Write one piece to the client."""
        with self._cond:
            stopped = self._stopped
        if not stopped:
            self._written += len(data)
            self.request.write(data)
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
                    while (
                        self._paused or self._in_flight >= self.max_in_flight
                    ) and not self._stopped:
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
