"""Canary: the private twisted.web behaviour the streaming request relies on.

:class:`pachs3gw.s3.request.StreamingRequest` reads ``HTTPChannel._command``,
``_path`` and ``_version`` in ``gotLength``, hides the ``Expect`` header there
so that ``allHeadersReceived`` does not answer ``100 Continue`` by itself,
and relies on ``channel.persistent`` to close a connection whose body was not
read.  If a Twisted upgrade changes any of it, these tests fail first, with
a message saying what moved; setup.py pins the range.
"""

from __future__ import annotations

from typing import Any

import twisted
from twisted.internet.testing import StringTransport
from twisted.web import http

from pachs3gw.s3.request import S3ResponseHeaders


class _Recorder(http.Request):
    seen: list[tuple[str, Any]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen = []

    def gotLength(self, length: Any) -> None:
        ch = self.channel
        self.seen.append(
            ("gotLength", (length, getattr(ch, "_command", None), getattr(ch, "_path", None), getattr(ch, "_version", None)))
        )
        # What StreamingRequest does: hide Expect so no automatic 100 Continue.
        self.requestHeaders.removeHeader(b"expect")
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        self.seen.append(("chunk", data))
        super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        self.seen.append(("requestReceived", (command, path, version)))
        self.setResponseCode(200)
        self.finish()


def _channel() -> tuple[http.HTTPChannel, StringTransport, list[_Recorder]]:
    made: list[_Recorder] = []

    def factory(*args: Any, **kwargs: Any) -> _Recorder:
        r = _Recorder(*args, **kwargs)
        made.append(r)
        return r

    channel = http.HTTPChannel()
    channel.requestFactory = factory  # type: ignore[assignment]
    transport = StringTransport()
    channel.makeConnection(transport)
    return channel, transport, made


def test_twisted_version_is_in_the_pinned_range() -> None:
    major = int(twisted.__version__.split(".")[0])
    assert 24 <= major < 27, (
        f"Twisted {twisted.__version__}: re-check pachs3gw/s3/request.py against "
        "twisted/web/http.py and widen the pin in setup.py"
    )


def test_channel_exposes_the_request_line_when_got_length_is_called() -> None:
    channel, transport, made = _channel()
    channel.dataReceived(b"PUT /b/k?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n")
    (req,) = made
    assert req.seen[0] == ("gotLength", (3, b"PUT", b"/b/k?x=1", b"HTTP/1.1")), (
        "HTTPChannel no longer holds _command/_path/_version during gotLength: "
        "StreamingRequest.gotLength must find the request line elsewhere"
    )


def test_hiding_expect_in_got_length_suppresses_the_automatic_100_continue() -> None:
    channel, transport, made = _channel()
    channel.dataReceived(
        b"PUT /b/k HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"
    )
    assert b"100 Continue" not in transport.value(), (
        "HTTPChannel sent 100 Continue although gotLength removed the Expect header: "
        "it now checks Expect before gotLength, or elsewhere"
    )


def test_body_arrives_in_handle_content_chunk_then_request_received() -> None:
    channel, transport, made = _channel()
    channel.dataReceived(b"PUT /b/k HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\n\r\nabc")
    channel.dataReceived(b"def")
    (req,) = made
    kinds = [k for k, _ in req.seen]
    assert kinds == ["gotLength", "chunk", "chunk", "requestReceived"]
    assert b"".join(v for k, v in req.seen if k == "chunk") == b"abcdef"


def test_chunked_transfer_encoding_reports_unknown_length() -> None:
    channel, transport, made = _channel()
    channel.dataReceived(
        b"PUT /b/k HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    )
    (req,) = made
    assert req.seen[0][1][0] is None
    assert ("chunk", b"abc") in req.seen and req.seen[-1][0] == "requestReceived"


def test_non_persistent_channel_closes_after_the_response() -> None:
    channel, transport, made = _channel()
    channel.dataReceived(b"GET /b/k HTTP/1.1\r\nHost: h\r\n\r\n")
    assert hasattr(channel, "persistent")
    channel2, transport2, made2 = _channel()

    class Early(_Recorder):
        def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
            pass

    channel2.requestFactory = Early  # type: ignore[assignment]
    channel2.dataReceived(b"PUT /b/k HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nab")
    req = channel2.requests[0]
    channel2.persistent = False
    req.setResponseCode(403)
    req.finish()
    assert transport2.disconnecting, "channel.persistent = False no longer closes the connection"


def test_response_headers_subclass_is_what_the_channel_writes() -> None:
    channel, transport, made = _channel()
    channel.dataReceived(b"GET /b/k HTTP/1.1\r\nHost: h\r\n\r\n")
    h = S3ResponseHeaders()
    h.setRawHeaders(b"x-amz-meta-color", [b"blue"])
    channel.writeHeaders(b"HTTP/1.1", b"200", b"OK", h)
    assert b"\r\nx-amz-meta-color: blue\r\n" in transport.value()
