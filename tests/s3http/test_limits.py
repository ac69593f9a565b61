"""Limits as S3 sets them: header size, 5 GiB single uploads, slow headers, stalled bodies.

Each limit is answered with an S3 XML error (never a silently closed
connection) and writes nothing.  Timeouts are shortened here through
:class:`~pachs3gw.s3.limits.Limits`; the defaults are tested for what they
let through.
"""

from __future__ import annotations

import socket
import time
from typing import Callable
from xml.etree import ElementTree

import pytest
import pytest_twisted

from pachs3gw.s3 import limits
from pachs3gw.s3.limits import MAX_SINGLE_UPLOAD, Limits
from tests.s3http.conftest import S3Harness, put_direct


def _read_all(s: socket.socket) -> bytes:
    out = b""
    while True:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not chunk:
            break
        out += chunk
    return out


def _code(raw: bytes) -> tuple[int, str]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    root = ElementTree.fromstring(body)
    assert root.tag == "Error", raw
    return status, root.findtext("Code") or ""


def _exchange(h: S3Harness, data: bytes, *, timeout: float = 5) -> bytes:
    with socket.create_connection(("127.0.0.1", h.port), timeout=timeout) as s:
        s.sendall(data)
        return _read_all(s)


@pytest_twisted.ensureDeferred
async def test_request_line_or_headers_over_the_limit_get_request_header_section_too_large(
    make_harness: Callable[..., S3Harness],
) -> None:
    h = make_harness(limits=Limits(max_header_bytes=4096))
    put_direct(h, "bucket", "k", b"v")
    long_line = b"GET /bucket/" + b"k" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    many = b"GET /bucket/k HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"x-h%d: %s\r\n" % (i, b"v" * 100) for i in range(60)
    ) + b"\r\n"
    one_long_header = b"GET /bucket/k HTTP/1.1\r\nHost: x\r\nx-big: " + b"v" * 5000 + b"\r\n\r\n"
    for data in (long_line, many, one_long_header):
        raw = await h.in_thread(_exchange, h, data)
        assert _code(raw) == (400, "RequestHeaderSectionTooLarge"), raw[:200]
        assert b"x-amz-request-id:" in raw
    # Under the limit, the same server answers normally.
    ok = await h.in_thread(_exchange, h, b"GET /bucket/k HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert ok.startswith(b"HTTP/1.1 200") and ok.endswith(b"v")


@pytest_twisted.ensureDeferred
async def test_requests_twisted_cannot_parse_get_an_s3_bad_request(s3h: S3Harness) -> None:
    for data in (
        b"GET\r\n\r\n",
        b"GET /bucket/caf\xc3\xa9?prefix=\xff HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nno colon here\r\n\r\n",
        b"PUT /bucket/k HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"PUT /bucket/k HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Name: v\r\n\r\n",
    ):
        raw = await s3h.in_thread(_exchange, s3h, data)
        assert _code(raw) == (400, "BadRequest"), (data, raw[:200])
    assert not s3h.backend.buckets  # nothing was created


@pytest_twisted.ensureDeferred
async def test_headers_sent_too_slowly_get_request_timeout(make_harness: Callable[..., S3Harness]) -> None:
    h = make_harness(limits=Limits(header_timeout=0.5))

    def slow() -> tuple[bytes, float]:
        with socket.create_connection(("127.0.0.1", h.port), timeout=5) as s:
            started = time.monotonic()
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
            for _ in range(10):
                time.sleep(0.1)
                try:
                    s.sendall(b"x")  # one byte at a time, never a full line
                except OSError:
                    break
            return _read_all(s), time.monotonic() - started

    raw, took = await h.in_thread(slow)
    assert _code(raw) == (400, "RequestTimeout")
    assert took < 3


@pytest_twisted.ensureDeferred
async def test_an_idle_keepalive_connection_is_not_a_header_timeout(
    make_harness: Callable[..., S3Harness],
) -> None:
    h = make_harness(limits=Limits(header_timeout=0.3))
    put_direct(h, "bucket", "k", b"v")

    def two_requests() -> bytes:
        with socket.create_connection(("127.0.0.1", h.port), timeout=5) as s:
            s.sendall(b"GET /bucket/k HTTP/1.1\r\nHost: x\r\n\r\n")
            first = s.recv(65536)
            time.sleep(0.6)  # idle between requests: the header clock isn't running
            s.sendall(b"GET /bucket/k HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return first + _read_all(s)

    raw = await h.in_thread(two_requests)
    assert raw.count(b"HTTP/1.1 200") == 2


@pytest_twisted.ensureDeferred
async def test_a_stalled_body_gets_request_timeout_and_stores_nothing(
    make_harness: Callable[..., S3Harness],
) -> None:
    h = make_harness(limits=Limits(body_timeout=0.3, body_min_bytes=1))
    put_direct(h, "bucket", "other", b"")

    def stall() -> tuple[bytes, float]:
        with socket.create_connection(("127.0.0.1", h.port), timeout=5) as s:
            started = time.monotonic()
            s.sendall(b"PUT /bucket/stalled HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
            return _read_all(s), time.monotonic() - started

    raw, took = await h.in_thread(stall)
    assert _code(raw) == (400, "RequestTimeout")
    assert took < 3
    assert "stalled" not in h.backend.objects("bucket")


@pytest_twisted.ensureDeferred
async def test_a_slow_but_steady_body_goes_through(make_harness: Callable[..., S3Harness]) -> None:
    h = make_harness(limits=Limits(body_timeout=0.3, body_min_bytes=10))
    put_direct(h, "bucket", "other", b"")
    payload = b"s" * 300

    def trickle() -> bytes:
        with socket.create_connection(("127.0.0.1", h.port), timeout=5) as s:
            s.sendall(b"PUT /bucket/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 300\r\nConnection: close\r\n\r\n")
            for i in range(0, 300, 20):  # ~1.5 s in all, 5x the window
                s.sendall(payload[i : i + 20])
                time.sleep(0.1)
            return _read_all(s)

    raw = await h.in_thread(trickle)
    assert raw.startswith(b"HTTP/1.1 200"), raw[:300]
    assert h.backend.objects("bucket")["slow"] == payload


@pytest_twisted.ensureDeferred
async def test_a_put_or_part_declaring_over_5_gib_is_entity_too_large_before_any_body(
    s3h: S3Harness,
) -> None:
    put_direct(s3h, "bucket", "other", b"")
    too_big = MAX_SINGLE_UPLOAD + 1
    for path, expect in (
        ("/bucket/huge", ""),
        ("/bucket/huge", "Expect: 100-continue\r\n"),
        ("/bucket/huge?partNumber=1&uploadId=nope", ""),
    ):
        started = time.monotonic()
        raw = await s3h.in_thread(
            _exchange, s3h,
            f"PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {too_big}\r\n{expect}\r\n".encode(),
        )
        assert time.monotonic() - started < 2
        assert not raw.startswith(b"HTTP/1.1 100")
        assert _code(raw) == (400, "EntityTooLarge"), raw[:300]
        assert b"<MaxSizeAllowed>5368709120</MaxSizeAllowed>" in raw
    assert "huge" not in s3h.backend.objects("bucket")
    # Exactly 5 GiB is allowed: the request gets as far as waiting for its body.
    head = await s3h.in_thread(
        _exchange, s3h,
        f"PUT /bucket/max HTTP/1.1\r\nHost: x\r\nContent-Length: {MAX_SINGLE_UPLOAD}\r\n"
        "Expect: 100-continue\r\n\r\n".encode(),
        timeout=1,
    )
    assert head.startswith(b"HTTP/1.1 100 Continue")


def test_default_limits_let_a_slow_link_through() -> None:
    """A 64 KiB/s link sends ~3.8 MiB per window: far above the minimum."""
    limits = Limits()
    assert limits.body_min_bytes <= 64 * 1024 * limits.body_timeout / 1000
    assert limits.header_timeout >= 30 and limits.max_header_bytes >= 8192


@pytest_twisted.ensureDeferred
async def test_a_body_of_undeclared_length_over_5_gib_is_entity_too_large_and_stores_nothing(
    s3h: S3Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Transfer-Encoding: chunked declares no length: the 5 GiB bound holds while it streams.

    (The bound is lowered here: a 5 GiB body is not sent in a unit test.)
    """
    monkeypatch.setattr(limits, "MAX_SINGLE_UPLOAD", 1000)
    put_direct(s3h, "bucket", "other", b"")
    chunk = b"%x\r\n%s\r\n" % (600, b"c" * 600)

    def exchange(size_chunks: int) -> bytes:
        return _exchange(
            s3h,
            b"PUT /bucket/chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"Connection: close\r\n\r\n" + chunk * size_chunks + b"0\r\n\r\n",
        )

    raw = await s3h.in_thread(exchange, 2)
    assert _code(raw) == (400, "EntityTooLarge"), raw[:300]
    assert b"<MaxSizeAllowed>1000</MaxSizeAllowed>" in raw
    assert "chunked" not in s3h.backend.objects("bucket")
    raw = await s3h.in_thread(exchange, 1)
    assert raw.startswith(b"HTTP/1.1 200"), raw[:300]
    assert s3h.backend.objects("bucket")["chunked"] == b"c" * 600
