"""A request body streaming from the network to the backend, verified on the way.

:class:`StreamingBody` is the :class:`~pachs3gw.s3.interfaces.IBodySource`
the HTTP layer hands to the backend.  Two threads meet here:

- the *reactor thread* feeds it whatever the transport delivers
  (:meth:`StreamingBody.feed`), says when the body is complete
  (:meth:`StreamingBody.end`) or the client is gone
  (:meth:`StreamingBody.abort`);
- a *worker thread* (the backend's upload loop) iterates
  :meth:`StreamingBody.chunks`, which decodes ``aws-chunked`` framing, feeds
  the digests, and at the end checks them — raising instead of ending when
  anything is wrong, so the backend never commits a bad body.

The queue between them is bounded in bytes: above ``high_water`` the
transport is paused (TCP backpressure reaches the client), and it is resumed
once the worker has drained it below ``low_water``.  Memory per upload is
therefore a few MiB whatever the object size.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Callable, Iterator

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorFromThreads
from zope.interface import implementer

from pachs3gw.s3 import errors, limits
from pachs3gw.s3.checksums import BodyVerifier
from pachs3gw.s3.chunked import AwsChunkedDecoder
from pachs3gw.s3.interfaces import BodyAborted, IBodySource

__all__ = ["StreamingBody", "DEFAULT_HIGH_WATER", "DEFAULT_LOW_WATER"]

DEFAULT_HIGH_WATER = 2 * 1024 * 1024
DEFAULT_LOW_WATER = 512 * 1024


def _check_size(size: int) -> None:
    """No request body is larger than S3's largest upload, declared or not.

    A declared length over it is refused before the body
    (:func:`~pachs3gw.s3.limits.check_upload_size`); this bounds the rest
    (``Transfer-Encoding: chunked``, aws-chunked sending more than it said)
    while they stream.
    """
    if size > limits.MAX_SINGLE_UPLOAD:
        raise errors.EntityTooLarge(extra={"MaxSizeAllowed": str(limits.MAX_SINGLE_UPLOAD)})


@implementer(IBodySource)
class StreamingBody:
    """A bounded, verified byte stream from the reactor thread to one worker thread.

    :param reactor: to call back into the reactor thread from the worker.
    :param pause: *reactor thread*; stop reading from the client.
    :param resume: *reactor thread*; start reading again.
    :param want_body: *reactor thread*; called once when the backend first
        asks for the body (the request sends ``100 Continue`` then).
    """

    def __init__(
        self,
        reactor: IReactorFromThreads,
        *,
        pause: Callable[[], None],
        resume: Callable[[], None],
        want_body: Callable[[], None] = lambda: None,
        high_water: int = DEFAULT_HIGH_WATER,
        low_water: int = DEFAULT_LOW_WATER,
    ) -> None:
        self._reactor = reactor
        self._pause = pause
        self._resume = resume
        self._want_body = want_body
        self._high_water = high_water
        self._low_water = low_water
        self._lock = threading.Condition()
        # Guarded by _lock:
        self._queue: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._complete = False
        self._aborted: BaseException | None = None
        self._iterating = False
        # Reactor thread only:
        #: Raw bytes received from the network (before aws-chunked decoding).
        self.received = 0
        #: Waiters of arrived().
        self._arrivals: list[Deferred[bool]] = []
        #: Most bytes ever queued at once, and how often the client was
        #: paused: what the memory bound and flow control are checked with.
        self.peak_buffered = 0
        self.pauses = 0
        # Set by configure() on the reactor thread before the worker starts:
        self._decoder: AwsChunkedDecoder | None = None
        self._verifier: BodyVerifier | None = None
        #: Decoded length if known in advance (IBodySource), else None.
        self.expected_length: int | None = None
        # Worker thread results:
        self._md5_hex: str | None = None
        self._checksums: dict[str, str] = {}
        #: The S3Error or BodyAborted iteration raised, if any (any thread,
        #: after the worker set it): the HTTP layer renders this rather than
        #: whatever the backend made of it.
        self.error: BaseException | None = None

    def configure(
        self,
        *,
        decoder: AwsChunkedDecoder | None,
        verifier: BodyVerifier,
        expected_length: int | None,
    ) -> None:
        """*Reactor thread*, before the backend sees the body: how to decode and verify it.

        :param decoder: an :class:`~pachs3gw.s3.chunked.AwsChunkedDecoder`
            for ``aws-chunked`` bodies, else None.
        :param verifier: a :class:`~pachs3gw.s3.checksums.BodyVerifier`.
        """
        self._decoder = decoder
        self._verifier = verifier
        self.expected_length = expected_length

    # Reactor thread ----------------------------------------------------------

    @property
    def complete(self) -> bool:
        """*Any thread.* Whether the whole body has arrived from the network."""
        with self._lock:
            return self._complete

    @property
    def started(self) -> bool:
        """*Any thread.* Whether anyone started iterating the body."""
        with self._lock:
            return self._iterating

    def feed(self, data: bytes) -> None:
        """*Reactor thread.* Queue bytes from the network; pause the transport if too many."""
        if not data:
            return
        self.received += len(data)
        with self._lock:
            if self._aborted is not None:
                return
            self._queue.append(data)
            self._buffered += len(data)
            self.peak_buffered = max(self.peak_buffered, self._buffered)
            pause = not self._paused and self._buffered > self._high_water
            if pause:
                self._paused = True
                self.pauses += 1
            self._lock.notify_all()
        if pause:
            self._pause()
            self._settle_arrivals(False)

    def end(self) -> None:
        """*Reactor thread.* The body is complete."""
        with self._lock:
            self._complete = True
            self._lock.notify_all()
        self._settle_arrivals(True)

    def abort(self, reason: BaseException | None = None) -> None:
        """*Reactor thread.* The client is gone (or the request is over): wake and fail the reader."""
        with self._lock:
            if self._aborted is None:
                self._aborted = reason or BodyAborted("The client closed the connection.")
            self._queue.clear()
            self._buffered = 0
            self._lock.notify_all()
            aborted = self._aborted
        self._settle_arrivals(aborted)

    def arrived(self) -> Deferred[bool]:
        """*Reactor thread.* See :meth:`IBodySource.arrived`: True once all of it is queued here."""
        self._want_body()
        with self._lock:
            if self._aborted is not None:
                return fail(self._aborted)
            if self._complete:
                return succeed(True)
            if self._paused:
                return succeed(False)
        d: Deferred[bool] = Deferred()
        self._arrivals.append(d)
        return d

    def _settle_arrivals(self, outcome: bool | BaseException) -> None:
        """*Reactor thread.* Fire the waiters of arrived()."""
        waiting, self._arrivals = self._arrivals, []
        for d in waiting:
            if isinstance(outcome, BaseException):
                d.errback(outcome)
            else:
                d.callback(outcome)

    def _maybe_resume(self) -> None:
        """*Reactor thread.* Resume the transport unless the request is over."""
        with self._lock:
            if self._aborted is not None or self._complete:
                # Once complete, twisted.web resumes the transport itself when
                # the request is done; resuming now would let a pipelined
                # request's bytes in while this one is still being handled.
                self._paused = False
                return
            if self._paused and self._buffered <= self._low_water:
                self._paused = False
            else:
                return
        self._resume()

    # Worker thread -----------------------------------------------------------

    def _take(self) -> bytes | None:
        """*Worker thread.* Next raw piece from the network, None at the end."""
        with self._lock:
            while not self._queue and not self._complete and self._aborted is None:
                self._lock.wait()
            if self._aborted is not None:
                raise self._aborted
            if not self._queue:
                return None
            data = self._queue.popleft()
            self._buffered -= len(data)
            resume = self._paused and self._buffered <= self._low_water
        if resume:
            self._reactor.callFromThread(self._maybe_resume)
        return data

    def chunks(self) -> Iterator[bytes]:
        """*Worker thread.* Yield the decoded body; raise (S3Error/BodyAborted) instead of ending if bad."""
        with self._lock:
            if self._iterating:
                raise RuntimeError("A request body can be read only once.")
            self._iterating = True
        self._reactor.callFromThread(self._want_body)
        decoder = self._decoder
        verifier = self._verifier
        if verifier is None:
            verifier = self._verifier = BodyVerifier()
        try:
            while True:
                data = self._take()
                if data is None:
                    break
                if decoder is not None:
                    for piece in decoder.feed(data):
                        verifier.update(piece)
                        _check_size(verifier.size)
                        yield piece
                else:
                    verifier.update(data)
                    _check_size(verifier.size)
                    yield data
            trailers = decoder.finish() if decoder is not None else {}
            if self.expected_length is not None and verifier.size != self.expected_length:
                raise errors.IncompleteBody()
            verifier.finish(trailers)
        except BaseException as e:
            if not isinstance(e, GeneratorExit):
                self.error = e
            raise
        self._md5_hex = verifier.md5_hex
        self._checksums = dict(verifier.checksums)

    def read_all(self, limit: int) -> bytes:
        """*Worker thread.* The whole (small) body, for XML request documents.

        More than ``limit`` bytes is MalformedXML's cousin: S3 answers
        MaxMessageLengthExceeded; we raise EntityTooLarge.
        """
        out = []
        size = 0
        for piece in self.chunks():
            size += len(piece)
            if size > limit:
                raise errors.EntityTooLarge(
                    f"The request body is larger than the {limit} bytes allowed."
                )
            out.append(piece)
        return b"".join(out)

    def md5_hex(self) -> str:
        """*Worker thread*, after exhaustion: the body's MD5 (hex)."""
        if self._md5_hex is None:
            raise RuntimeError("The body has not been read to its end.")
        return self._md5_hex

    def checksums(self) -> dict[str, str]:
        """After exhaustion: the verified checksums, algorithm → base64."""
        return dict(self._checksums)
