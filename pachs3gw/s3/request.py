"""A twisted.web request that reaches the resource as soon as its headers are in.

twisted.web spools a request body to memory or a temporary file and calls the
resource only when the body is complete.  An S3 gateway can't: objects are
arbitrarily large, and an upload must flow straight into the backend with
backpressure.  :class:`StreamingRequest` (the Site's ``requestFactory``)
therefore:

- in :meth:`gotLength` (headers complete, body not yet read) takes the
  request line from the channel, creates a :class:`~pachs3gw.s3.body.StreamingBody`
  and schedules :meth:`process` with ``callLater(0)``;
- feeds every body byte from :meth:`handleContentChunk` into that body, and
  marks it complete in :meth:`requestReceived` (which, unlike the base
  class, does not dispatch again);
- sends ``100 Continue`` only when the backend starts reading the body, so
  a request refused early (bad signature, no such bucket) never makes the
  client send its body;
- after a response that was finished before the body was complete, reads
  and discards a small rest of the body before ending the request, or closes
  the connection (a large rest, or a client waiting for ``100 Continue``):
  the rest of the body must never be parsed as the next request.

This relies on private attributes of :class:`twisted.web.http.HTTPChannel`
(``_command``, ``_path``, ``_version`` while headers are processed, and the
order of ``gotLength`` and the ``Expect`` check in ``allHeadersReceived``);
``tests/s3http/test_twisted_canary.py`` fails loudly if they change, and
setup.py pins the Twisted range.

Everything here runs on the reactor thread.
"""

from __future__ import annotations

import io
import time
from typing import Any, Iterator, Sequence, cast
from urllib.parse import unquote_to_bytes

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IPushProducer, ITCPTransport
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import server
from twisted.web.http_headers import Headers
from zope.interface import implementer

from pachs3gw.s3 import errors
from pachs3gw.s3.body import DEFAULT_HIGH_WATER, DEFAULT_LOW_WATER, StreamingBody
from pachs3gw.s3.limits import Limits
from pachs3gw.s3.access_log import log_request
from pachs3gw.s3.http_interfaces import IS3Request, RequestStats

__all__ = ["StreamingRequest"]

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
#: The unread rest of a request body up to which a connection is kept (the
#: rest is read and discarded after the response) rather than closed.
DRAIN_LIMIT = 1024 * 1024
#: How long a drained body may take before the connection is dropped.
DRAIN_TIMEOUT = 30.0


class S3ResponseHeaders(Headers):
    """Response headers that write ``x-amz-*`` names in lower case, as S3 does.

    twisted.web capitalises header names (``X-Amz-Meta-Color``), and SDKs
    take user-metadata names from the response verbatim: boto3 would hand
    back ``{"Color": ...}`` for what was stored as ``color``.
    """

    def getAllRawHeaders(self) -> Iterator[tuple[bytes, Sequence[bytes]]]:
        for name, values in super().getAllRawHeaders():
            if name[:6].lower() == b"x-amz-":
                name = name.lower()
            yield name, values


def _query_args(query: bytes) -> dict[bytes, list[bytes]]:
    """twisted.web's ``request.args``, parsed without decoding (any byte may be in a query).

    ``urllib.parse.parse_qs`` over bytes decodes as ASCII and raises on
    ``café``; the S3 app parses the raw query itself (``_call``), so this
    only keeps ``args`` true for code that reads it.
    """
    args: dict[bytes, list[bytes]] = {}
    for segment in query.split(b"&"):
        if segment:
            name, _, value = segment.partition(b"=")
            args.setdefault(unquote_to_bytes(name.replace(b"+", b" ")), []).append(
                unquote_to_bytes(value.replace(b"+", b" "))
            )
    return args


@implementer(IS3Request)
class StreamingRequest(server.Request):
    """A request whose body streams to the resource while it arrives.

    Install it as a Site's ``requestFactory`` (see
    :func:`pachs3gw.s3.site.make_site`).  The Site must have ``reactor``,
    ``high_water`` and ``low_water`` attributes.
    """

    _log = Logger()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._args: dict[bytes, list[bytes]] | None = None
        #: The access line is out (see _log_once).
        self._logged = False
        super().__init__(*args, **kwargs)
        self.responseHeaders = S3ResponseHeaders()
        #: The body on its way in; None until the headers are complete.
        self.body: StreamingBody | None = None
        self.stats = RequestStats()
        self.started_at = time.monotonic()
        self.disconnected = False
        #: Set by :class:`~pachs3gw.s3.mount.S3Resource` (where it is mounted).
        self.s3_mount = b""
        self._expect_continue = False
        self._continue_sent = False
        self._expect_headers: Sequence[bytes] | None = None
        self._dispatch_call: Any = None
        self._dispatched = False
        self._paused_transport = False
        self._content_length: int | None = None
        #: Read and discard the unread rest of the body after the response.
        self._drain = False
        self._finish_when_drained = False
        self._drain_timeout: Any = None
        #: Body-rate watch (see _check_body_progress).
        self._limits = Limits()
        self._progress_call: Any = None
        self._progress_mark = 0
        self._stalled = False
        self._stall_abort: Any = None

    @property
    def args(self) -> dict[bytes, list[bytes]]:
        """twisted.web's ``args``, parsed when first read: the S3 app parses the raw query itself."""
        if self._args is None:
            self._args = _query_args(self.uri.partition(b"?")[2]) if self.uri else {}
        return self._args

    @args.setter
    def args(self, value: dict[bytes, list[bytes]]) -> None:
        self._args = value

    # Called by HTTPChannel ----------------------------------------------------

    def gotLength(self, length: int | None) -> None:
        """Headers are in: set up the streaming body and schedule the dispatch."""
        channel = self.channel
        # Site.buildProtocol sets it; Twisted's HTTPChannel doesn't declare it.
        site = channel.site  # type: ignore[attr-defined]
        self._reactor = site.reactor
        # Not spooled: the body goes to self.body.
        self.content = io.BytesIO()
        self._content_length = length
        self.method = channel._command
        self.uri = channel._path
        self.clientproto = channel._version
        self.path = self.uri.partition(b"?")[0]

        # HTTPChannel.allHeadersReceived sends 100 Continue right after this
        # method returns if it still sees the Expect header.  Hide it; it is
        # put back before dispatch (it may be a signed header) and answered
        # when the body is actually wanted.
        expect = self.requestHeaders.getRawHeaders(b"expect")
        if expect and expect[0].lower() == b"100-continue":
            self._expect_headers = expect
            self.requestHeaders.removeHeader(b"expect")
            self._expect_continue = self.clientproto == b"HTTP/1.1"

        self.body = StreamingBody(
            self._reactor,
            pause=self._pause_transport,
            resume=self._resume_transport,
            want_body=self.send_continue,
            high_water=getattr(site, "high_water", DEFAULT_HIGH_WATER),
            low_water=getattr(site, "low_water", DEFAULT_LOW_WATER),
        )
        self._limits = getattr(site, "limits", None) or Limits()
        if length == 0:
            self.body.end()
        else:
            self._progress_call = self._reactor.callLater(
                self._limits.body_timeout, self._check_body_progress
            )
        self._dispatch_call = self._reactor.callLater(0, self._dispatch)

    def handleContentChunk(self, data: bytes) -> None:
        """Body bytes from the network go to the body source, not a spool file."""
        if self.body is not None and not self.finished and not self.disconnected:
            self.body.feed(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        """The body is complete.  Unlike the base class: no dispatch, it already happened."""
        if self.body is not None:
            self.body.end()
        if self._finish_when_drained and not self.finished and not self.disconnected:
            self.finish()

    def connectionLost(self, reason: Failure) -> None:
        self.disconnected = True
        self._cancel_body_timers()
        if self._dispatch_call is not None and self._dispatch_call.active():
            self._dispatch_call.cancel()
        if self._drain_timeout is not None and self._drain_timeout.active():
            self._drain_timeout.cancel()
        if self.body is not None:
            self.body.abort()
        super().connectionLost(reason)
        self._log_once(aborted=True)

    def _log_once(self, *, aborted: bool = False) -> None:
        """The request's one access line, when it ends (finished, or cut off first).

        Called from :meth:`finish` and :meth:`connectionLost` rather than
        through ``notifyFinish``: a Deferred and two callbacks per request
        for one function call.  A request whose headers never completed
        (``gotLength`` not reached) is not an S3 request and has no line.
        """
        if self._logged or self.body is None:
            return
        self._logged = True
        log_request(self, aborted=aborted)

    # Stalled bodies ------------------------------------------------------------

    def _check_body_progress(self) -> None:
        """Every ``body_timeout`` s: a body must have brought ``body_min_bytes`` meanwhile.

        Time the client is held back (transport paused by us, ``100
        Continue`` not sent yet) does not count.  A stalled body fails its
        reader with RequestTimeout, which the S3 app answers, and the
        connection closes after that answer (or a few seconds later if
        nobody answers).
        """
        self._progress_call = None
        body = self.body
        if self.finished or self.disconnected or body is None or body.complete:
            return
        if self._finish_when_drained:
            return  # DRAIN_TIMEOUT watches the rest.
        held_back = self._paused_transport or (self._expect_continue and not self._continue_sent)
        if not held_back and body.received - self._progress_mark < self._limits.body_min_bytes:
            self._stalled = True
            if self.channel is not None:
                self.channel.persistent = False
            body.abort(errors.RequestTimeout())
            self._stall_abort = self._reactor.callLater(5.0, self.abort_connection)
            return
        self._progress_mark = body.received
        self._progress_call = self._reactor.callLater(
            self._limits.body_timeout, self._check_body_progress
        )

    def _cancel_body_timers(self) -> None:
        for call in (self._progress_call, self._stall_abort):
            if call is not None and call.active():
                call.cancel()
        self._progress_call = self._stall_abort = None

    # Dispatch ------------------------------------------------------------------

    def _dispatch(self) -> None:
        self._dispatch_call = None
        self._dispatched = True
        if self._expect_headers is not None:
            self.requestHeaders.setRawHeaders(b"expect", self._expect_headers)
        self.process()

    def send_continue(self) -> None:
        """Send ``100 Continue`` if the client waits for it and it is still useful."""
        if (
            self._expect_continue
            and not self._continue_sent
            and not self.startedWriting
            and not self.finished
            and not self.disconnected
            and self.body is not None
            and not self.body.complete
            and self.channel.transport is not None
        ):
            self._continue_sent = True
            self.channel.transport.write(_CONTINUE)

    def getRequestHostname(self) -> bytes:
        """The Host header's name if a router can use it, else our own address.

        Klein (the gateway's ``/_pachs3gw/`` endpoints) binds werkzeug's URL
        map to this name, and werkzeug answers a name it can't IDNA-encode
        (``..``, a label over 63 characters, bytes that are not UTF-8) with
        its own 500 or 400 page.  The S3 API routes from the request line and
        reads the Host header itself (signatures cover it), so the name only
        has to be harmless here.
        """
        name = super().getRequestHostname()
        try:
            name.decode("utf-8").partition(":")[0].encode("idna")
        except UnicodeError:
            return self.getHost().host.encode("ascii")
        return name

    # Flow control --------------------------------------------------------------

    def _network_producer(self) -> IPushProducer | None:
        if self.channel is None or self.channel.transport is None:
            return None
        return IPushProducer(self.channel.transport, None)

    def _pause_transport(self) -> None:
        producer = self._network_producer()
        if producer is not None and not self.disconnected:
            self._paused_transport = True
            producer.pauseProducing()

    def _resume_transport(self) -> None:
        producer = self._network_producer()
        if producer is not None and not self.disconnected and self._paused_transport:
            self._paused_transport = False
            producer.resumeProducing()

    # Responses -----------------------------------------------------------------

    @property
    def body_complete(self) -> bool:
        return self.body is None or self.body.complete

    def write(self, data: bytes) -> None:
        if not self.startedWriting and not self.disconnected:
            self._before_headers()
        super().write(data)

    def _before_headers(self) -> None:
        """Decide what happens to a body nobody will read, before the headers go out.

        A small rest (known length, at most :data:`DRAIN_LIMIT`) is read and
        discarded after the response, so the connection stays usable: closing
        a socket with unread data makes the kernel send a reset, and the
        client may lose our answer.  Anything else, or a client still waiting
        for ``100 Continue`` (it will not send the body at all), gets
        ``Connection: close``.
        """
        if self.body_complete:
            transport = self.channel.transport if self.channel is not None else None
            if self._expect_continue and not self._continue_sent and transport is not None:
                # An empty body the client still waits to be asked for: say
                # so first. Answered without it, botocore takes the answer as
                # an early response and misreads the next one on the connection.
                self._continue_sent = True
                transport.write(_CONTINUE)
            return
        if self._can_drain():
            self._drain = True
            return
        self.responseHeaders.setRawHeaders(b"connection", [b"close"])
        if self.channel is not None:
            self.channel.persistent = False

    def _can_drain(self) -> bool:
        if self._stalled:
            return False
        if self._expect_continue and not self._continue_sent:
            return False
        if self._content_length is None or self.body is None:
            return False
        return self._content_length - self.body.received <= DRAIN_LIMIT

    def finish(self) -> None:
        if not self.startedWriting and not self.disconnected:
            self._before_headers()
        body = self.body
        if body is not None and not body.complete and not self.disconnected:
            if self._finish_when_drained:
                return  # Still draining; requestReceived finishes.
            # Nobody will read the rest: wake a reader that might still
            # wait, and stop holding the client back.
            body.abort()
            self._resume_transport()
            if self._drain:
                # The response is fully written; the request ends (and the
                # next one on this connection starts) when the body has.
                self._finish_when_drained = True
                self._drain_timeout = self._reactor.callLater(
                    DRAIN_TIMEOUT, self.abort_connection
                )
                return
        if self._drain_timeout is not None and self._drain_timeout.active():
            self._drain_timeout.cancel()
        self._cancel_body_timers()
        super().finish()
        if self.finished:
            self._log_once()

    def abort_connection(self) -> None:
        """Drop the connection: the response can't be completed (error after headers)."""
        if self.channel is not None and self.channel.transport is not None:
            # HTTP is served over TCP (or TLS over TCP): ITCPTransport has abortConnection.
            cast(ITCPTransport, self.channel.transport).abortConnection()

    def when_disconnected(self) -> Deferred[None]:
        """A Deferred that fires (never fails) once the connection is gone or the request done."""
        if self.disconnected or self.finished:
            return succeed(None)
        return self.notifyFinish().addErrback(lambda _: None)
