"""The S3 layer's timers on a fake clock: keepalive whitespace, the drain limit, idle connections.

No real time passes: the site runs on a ``MemoryReactorClock`` over a
``StringTransport``, request bodies are read inline (a pool that runs its
work at once, a ``callFromThread`` that calls at once), and each test
advances the clock exactly past the deadline it is about.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure

from pachs3gw.s3 import MemoryAuthenticator, MemoryBackend, S3Server, make_site
from pachs3gw.s3.interfaces import WriteResult
from pachs3gw.s3.request import DRAIN_TIMEOUT


class ClockReactor(MemoryReactorClock):
    """A fake clock whose ``callFromThread`` runs at once (there are no threads)."""

    def callFromThread(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        f(*args, **kwargs)


class InlinePool:
    """A thread pool that runs its work at once, in the caller's frame."""

    def callInThreadWithCallback(
        self, on_result: Callable[[bool, Any], None], f: Callable[..., Any], *a: Any, **kw: Any
    ) -> None:
        try:
            result = f(*a, **kw)
        except BaseException:  # noqa: BLE001
            on_result(False, Failure())
        else:
            on_result(True, result)


class Connection:
    """One client connection to a site on the fake clock."""

    def __init__(self, site: Any, clock: ClockReactor) -> None:
        self.clock = clock
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 5555))
        self.protocol = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5555))
        self.protocol.makeConnection(self.transport)

    def send(self, data: bytes) -> None:
        self.protocol.dataReceived(data)
        self.clock.advance(0)  # the dispatch is scheduled for the next turn

    def received(self) -> bytes:
        return self.transport.value()

    def body(self) -> bytes:
        """The response body so far (chunked transfer coding removed)."""
        head, _, rest = self.received().partition(b"\r\n\r\n")
        if b"transfer-encoding: chunked" not in head.lower():
            return rest
        out = b""
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line, 16)
            out, rest = out + rest[:size], rest[size + 2 :]
        return out

    @property
    def closed(self) -> bool:
        return bool(self.transport.disconnecting)


@pytest.fixture
def clock() -> ClockReactor:
    return ClockReactor()


@pytest.fixture
def backend(clock: ClockReactor) -> MemoryBackend:
    return MemoryBackend(clock, InlinePool())  # type: ignore[arg-type]


@pytest.fixture
def server(clock: ClockReactor, backend: MemoryBackend) -> S3Server:
    return S3Server(clock, InlinePool(), backend, MemoryAuthenticator())  # type: ignore[arg-type]


def _complete_request(upload_id: str) -> bytes:
    body = (
        b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>"
        b"<ETag>\"9dd4e461268c8034f5c8564e155c67a6\"</ETag></Part></CompleteMultipartUpload>"
    )
    return (
        b"POST /bucket/k?uploadId=%s HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n%s"
        % (upload_id.encode(), len(body), body)
    )


def test_slow_complete_gets_200_then_whitespace_then_the_result(
    clock: ClockReactor, backend: MemoryBackend, server: S3Server
) -> None:
    backend.seed_bucket("bucket")
    slow: Deferred[WriteResult] = Deferred()
    backend.complete_multipart_upload = lambda *a: slow  # type: ignore[method-assign,assignment]
    server.keepalive_after, server.keepalive_interval = 10.0, 5.0
    conn = Connection(make_site(server, clock, timeout=None), clock)
    conn.send(_complete_request("u1"))
    clock.advance(9.9)
    assert conn.received() == b""  # fast enough so far: nothing sent early
    clock.advance(0.1)
    assert conn.received().startswith(b"HTTP/1.1 200 ")
    assert conn.body() == b'<?xml version="1.0" encoding="UTF-8"?>\n'
    clock.advance(4.9)
    assert conn.body().endswith(b"\n")  # the next space is due at +5 s
    clock.advance(0.1)
    assert conn.body().endswith(b"\n ")
    clock.advance(5.0)
    assert conn.body().endswith(b"\n  ")
    slow.callback(WriteResult(etag="abc-1", version_id="v1"))
    body = conn.body()
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n  <')
    assert body.count(b"<?xml") == 1
    assert body.rstrip().endswith(b"</CompleteMultipartUploadResult>")
    assert b"abc-1" in body
    assert [c for c in clock.getDelayedCalls() if c.active()] == [], "a ticker is left"


def test_slow_complete_that_fails_sends_the_error_document_in_the_200(
    clock: ClockReactor, backend: MemoryBackend, server: S3Server
) -> None:
    from pachs3gw.s3 import errors

    backend.seed_bucket("bucket")
    slow: Deferred[WriteResult] = Deferred()
    backend.complete_multipart_upload = lambda *a: slow  # type: ignore[method-assign,assignment]
    server.keepalive_after = server.keepalive_interval = 1.0
    conn = Connection(make_site(server, clock, timeout=None), clock)
    conn.send(_complete_request("u1"))
    clock.pump([1.0] * 3)
    assert conn.received().startswith(b"HTTP/1.1 200 ")
    assert conn.body().endswith(b"\n  ")  # the prolog, then a space a second
    slow.errback(errors.InvalidPart())
    body = conn.body()
    assert body.rstrip().endswith(b"</Error>") and b"<Code>InvalidPart</Code>" in body
    assert body.count(b"<?xml") == 1
    assert [c for c in clock.getDelayedCalls() if c.active()] == []


def test_fast_complete_sends_no_whitespace_and_leaves_no_timer(
    clock: ClockReactor, backend: MemoryBackend, server: S3Server
) -> None:
    backend.seed_bucket("bucket")
    quick: Deferred[WriteResult] = Deferred()
    backend.complete_multipart_upload = lambda *a: quick  # type: ignore[method-assign,assignment]
    conn = Connection(make_site(server, clock, timeout=None), clock)
    conn.send(_complete_request("u1"))
    clock.advance(server.keepalive_after - 0.5)
    quick.callback(WriteResult(etag="abc-1"))
    out = conn.received()
    assert out.startswith(b"HTTP/1.1 200 ") and b"content-length" in out.lower()
    assert conn.body().startswith(b"<?xml") and b"abc-1" in conn.body()
    assert [c for c in clock.getDelayedCalls() if c.active()] == []


def test_a_refused_upload_waits_drain_timeout_for_the_small_rest_then_drops_the_connection(
    clock: ClockReactor, server: S3Server
) -> None:
    conn = Connection(make_site(server, clock, timeout=None), clock)
    conn.send(b"PUT /nobucket/k HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\n" + b"x" * 100)
    assert conn.received().startswith(b"HTTP/1.1 404 ")
    assert b"NoSuchBucket" in conn.received()
    clock.advance(DRAIN_TIMEOUT - 1)
    assert not conn.closed  # still reading the rest, to keep the connection
    clock.advance(1)
    assert conn.closed


def test_a_refused_upload_whose_rest_arrives_keeps_the_connection(
    clock: ClockReactor, server: S3Server
) -> None:
    conn = Connection(make_site(server, clock, timeout=None), clock)
    conn.send(b"PUT /nobucket/k HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\n" + b"x" * 100)
    conn.send(b"x" * 900)
    assert [c for c in clock.getDelayedCalls() if c.active()] == []
    conn.send(b"GET /nobucket HTTP/1.1\r\nHost: h\r\n\r\n")
    assert conn.received().count(b"NoSuchBucket") == 2
    clock.advance(DRAIN_TIMEOUT * 2)
    assert not conn.closed


def test_an_idle_connection_is_closed_after_the_site_timeout(
    clock: ClockReactor, server: S3Server
) -> None:
    conn = Connection(make_site(server, clock, timeout=60), clock)
    conn.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert conn.received().startswith(b"HTTP/1.1 200 ")
    clock.advance(59)
    assert not conn.closed
    clock.advance(1)
    assert conn.closed
