"""The HTTP connection: S3 answers for what twisted.web refuses before a request exists.

twisted.web answers a malformed request line or header with a bare
``400 Bad Request`` (no body), closes the connection without a word when a
line is longer than its limit, and waits forever for headers sent one byte
every few minutes.  :class:`S3Channel` answers each with an S3 XML error
(``RequestHeaderSectionTooLarge``, ``BadRequest``, ``RequestTimeout``) and
then closes, with the limits of :class:`pachs3gw.s3.limits.Limits`.

Reactor thread only.  Relies on ``HTTPChannel`` calling
``_respondToBadRequestAndDisconnect`` for every request it refuses and on
``_receivedHeaderSize``/``totalHeadersSize`` (the canary test checks both).
"""

from __future__ import annotations

import base64
import os
from typing import Any

from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel

from pachs3gw.s3 import errors, xml_output
from pachs3gw.s3.limits import Limits

__all__ = ["S3Channel"]


class S3Channel(HTTPChannel):
    """An ``HTTPChannel`` whose refusals are S3 errors, with a deadline for headers."""

    def __init__(self, limits: Limits | None = None) -> None:
        super().__init__()
        self.limits = limits or Limits()
        self.MAX_LENGTH = self.totalHeadersSize = self.limits.max_header_bytes
        self._header_timer: Any = None
        self._host: Any = None

    def getHost(self) -> Any:
        """The local address, asked of the socket once per connection.

        twisted.web's ``Request.__init__`` asks for it on every request (a
        ``getsockname`` system call); it cannot change while connected.
        """
        if self._host is None:
            self._host = super().getHost()
        return self._host

    # Header deadline ---------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        if self.line_mode and self._header_timer is None and not self._handlingRequest:
            # The first bytes of a request: its headers must be in by the deadline.
            self._header_timer = self.callLater(
                self.limits.header_timeout, self._headers_timed_out
            )
        super().dataReceived(data)

    def allHeadersReceived(self) -> None:
        self._cancel_header_timer()
        super().allHeadersReceived()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._cancel_header_timer()
        super().connectionLost(reason)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            if self._header_timer.active():
                self._header_timer.cancel()
            self._header_timer = None

    def _headers_timed_out(self) -> None:
        self._header_timer = None
        self._refuse(errors.RequestTimeout())

    # Refusals ----------------------------------------------------------------

    def lineLengthExceeded(self, line: bytes) -> None:
        """A request line or header line over the limit (twisted.web just hangs up)."""
        self._refuse(errors.RequestHeaderSectionTooLarge())

    def _respondToBadRequestAndDisconnect(self) -> None:
        if self._receivedHeaderSize > self.totalHeadersSize:
            self._refuse(errors.RequestHeaderSectionTooLarge())
        else:
            self._refuse(errors.BadRequest())

    def _refuse(self, error: errors.S3Error) -> None:
        """Write ``error`` as a whole response and close: nothing more is read."""
        self._cancel_header_timer()
        if self.transport is None or getattr(self, "_refused", False):
            return
        self._refused = True
        request_id = os.urandom(8).hex().upper()
        host_id = base64.b64encode(os.urandom(24)).decode("ascii")
        body = xml_output.error(error.code, error.message, "/", request_id, error.extra, host_id=host_id)
        reason = b"Bad Request" if error.status == 400 else b"Error"
        head = (
            b"HTTP/1.1 %d %s\r\n" % (error.status, reason)
            + b"Content-Type: application/xml\r\n"
            + b"Content-Length: %d\r\n" % len(body)
            + b"Connection: close\r\n"
            + b"Server: pachs3gw\r\n"
            + b"x-amz-request-id: %s\r\n" % request_id.encode("ascii")
            + b"x-amz-id-2: %s\r\n\r\n" % host_id.encode("ascii")
        )
        self.transport.write(head + body)
        # Stop parsing whatever else the client sends.
        self.dataReceived = self.lineReceived = lambda *args: None  # type: ignore[method-assign]
        self.loseConnection()
