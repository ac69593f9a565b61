"""The seam between twisted.web and the S3 handlers: what a request offers them.

The handlers in :mod:`pachs3gw.s3` answer through this interface only, so
they never depend on which twisted.web request class carries the call:
:class:`~pachs3gw.s3.request.StreamingRequest` (the S3 site: the body
streams from the network) provides it natively, and
:class:`~pachs3gw.s3.mount.S3Resource` gives a plain
:class:`twisted.web.server.Request` of an embedder's own ``Site`` the same
attributes before the handlers see it.

Threads: reactor thread only.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IConsumer, IReactorFromThreads, IReactorTime
from twisted.web.iweb import IRequest
from zope.interface import Attribute

__all__ = ["IS3Reactor", "IS3Request", "RequestStats"]


class IS3Reactor(IReactorTime, IReactorFromThreads):
    """What the S3 layer needs of a reactor: the clock, timers, and calls from
    the threads that read bodies (any real reactor; ``MemoryReactorClock`` in tests)."""


class RequestStats:
    """What the access line reports about a request; filled in by the S3 app."""

    __slots__ = ("request_id", "bucket", "key", "operation", "error_code", "access_key")

    def __init__(self) -> None:
        self.request_id = ""
        self.bucket: str | None = None
        self.key: str | None = None
        self.operation: str | None = None
        self.error_code: str | None = None
        self.access_key: str | None = None


class IS3Request(IRequest, IConsumer):
    """A twisted.web request as the S3 handlers use it.

    Beyond :class:`twisted.web.iweb.IRequest` and the consumer side that
    downloads register on (:class:`~twisted.internet.interfaces.IConsumer`): the body as a stream the
    backend pulls from a worker thread, what the access line reports, and
    the two ways the handlers end a connection that cannot be answered.
    """

    body = Attribute(
        "The request body, a :class:`pachs3gw.s3.body.StreamingBody` (None before "
        "the headers are in)."
    )
    producer = Attribute("The producer registered for the response body, if any.")
    body_complete = Attribute("True once every byte of the body the client sent is here.")
    stats = Attribute("The :class:`RequestStats` of this request.")
    disconnected = Attribute("True once the client's connection is gone.")
    s3_mount = Attribute(
        "The path the S3 resource is mounted at (``b''`` at the root, ``b'/s3'`` below)."
    )
    finished = Attribute("True once the response is finished.")
    startedWriting = Attribute("True once the status line and headers are out.")
    code = Attribute("The response status code set so far.")
    sentLength = Attribute("Bytes of response body written so far.")
    started_at = Attribute("``time.monotonic()`` when the request arrived (for the access line).")

    def when_disconnected() -> Deferred[None]:
        """Fires when the connection is gone or the response finished."""

    def abort_connection() -> None:
        """Cut the connection now: the only honest answer once a response is broken."""
