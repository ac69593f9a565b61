"""The S3 API as a resource for a site of the embedder's own, at any path.

:class:`S3Resource` serves both kinds of request:

- a :class:`~pachs3gw.s3.request.StreamingRequest` (a site from
  :func:`pachs3gw.s3.site.make_site`, or any site whose ``requestFactory``
  it is): the body streams from the network with backpressure;
- a plain :class:`twisted.web.server.Request` from an ordinary ``Site``:
  twisted.web has already spooled the body (to memory when small, to a
  temporary file otherwise), and :class:`_SpooledFeeder` streams it from
  there into the same bounded body queue, so a large upload never sits in
  memory.  The response side (downloads as a push producer, keepalive
  whitespace, error documents) is the same for both.

Mounted below the root (``root.putChild(b"s3", resource)``), the resource
routes on the path after the mount point, while signatures are checked over
the whole path the client signed (boto3 with ``endpoint_url=".../s3"`` signs
``/s3/bucket/key``).

Everything here runs on the reactor thread.
"""

from __future__ import annotations

import time
from typing import IO, Any

from twisted.internet.defer import Deferred, succeed
from twisted.web.resource import IResource, Resource
from zope.interface import alsoProvides

from pachs3gw.s3.body import StreamingBody
from pachs3gw.s3.http_interfaces import IS3Reactor, IS3Request, RequestStats
from pachs3gw.s3.request import StreamingRequest

__all__ = ["S3Resource"]

#: Bytes read from a spooled body per step.
PIECE = 1024 * 1024


class S3Resource(Resource):
    """The S3 API at its mount point in any twisted.web resource tree."""

    isLeaf = True

    def __init__(self, inner: IResource, reactor: IS3Reactor) -> None:
        super().__init__()
        self._inner = inner
        self._reactor = reactor

    def render(self, request: Any) -> Any:  # a Request of any Site: adapted below
        # Where twisted.web found us: b"" at the root, b"/s3" below it.
        request.s3_mount = b"".join(b"/" + segment for segment in request.prepath)
        if not isinstance(request, StreamingRequest):
            _adapt_plain_request(request, self._reactor)
        return self._inner.render(request)


def _adapt_plain_request(request: Any, reactor: IS3Reactor) -> None:
    """Give a plain twisted.web request what the S3 handlers use of a StreamingRequest."""
    feeder = _SpooledFeeder(request.content)
    body = StreamingBody(reactor, pause=feeder.pause, resume=feeder.resume)
    feeder.body = body
    request.body = body
    request.body_complete = True  # what the client sent is all here
    request.stats = RequestStats()
    request.disconnected = False

    def lost(_: object) -> None:
        request.disconnected = True
        body.abort()

    request.notifyFinish().addErrback(lost)

    def when_disconnected() -> Deferred[None]:
        if request.disconnected or request.finished:
            return succeed(None)
        return request.notifyFinish().addErrback(lambda _: None)

    def abort_connection() -> None:
        transport = request.channel.transport if request.channel is not None else None
        if transport is not None:
            transport.abortConnection()

    request.when_disconnected = when_disconnected
    request.abort_connection = abort_connection
    request.started_at = time.monotonic()
    alsoProvides(request, IS3Request)
    feeder.resume()


class _SpooledFeeder:
    """Feeds a body twisted.web spooled into a :class:`StreamingBody`, a piece at a time.

    The body's flow control drives it like a network transport: ``pause``
    when the queue is over its high-water mark, ``resume`` below the low one.
    """

    def __init__(self, content: IO[bytes]) -> None:
        self._content = content
        self._paused = False
        self._done = False
        self.body: StreamingBody | None = None

    def pause(self) -> None:
        self._paused = True

    def resume(self) -> None:
        self._paused = False
        body = self.body
        assert body is not None
        while not self._paused and not self._done:
            data = self._content.read(PIECE)
            if not data:
                self._done = True
                body.end()
                return
            body.feed(data)
