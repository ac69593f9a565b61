"""The streaming request: 100 Continue, early answers, chunked bodies, disconnects, flow control."""

from __future__ import annotations

import hashlib
import socket
import time

import pytest_twisted

from tests.s3http.conftest import S3Harness, put_direct, wait_for


def _headers_and_body(raw: bytes) -> tuple[bytes, bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return head, body


@pytest_twisted.ensureDeferred
async def test_expect_100_continue_is_sent_once_when_the_body_is_wanted(s3h: S3Harness) -> None:
    put_direct(s3h, "bucket", "other", b"")

    def go() -> tuple[bytes, bytes]:
        with socket.create_connection(("127.0.0.1", s3h.port), timeout=5) as s:
            s.sendall(
                b"PUT /bucket/key HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                b"Expect: 100-continue\r\n\r\n"
            )
            first = s.recv(4096)
            s.sendall(b"hello")
            rest = b""
            while b"\r\n\r\n" not in rest:
                rest += s.recv(4096)
            return first, rest

    first, rest = await s3h.in_thread(go)
    assert first == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert rest.startswith(b"HTTP/1.1 200 ")
    assert b"100 Continue" not in rest
    assert s3h.backend.objects("bucket")["key"] == b"hello"


@pytest_twisted.ensureDeferred
async def test_empty_body_with_expect_gets_100_continue_before_the_answer(s3h: S3Harness) -> None:
    # botocore sends Expect with an empty PUT and waits for 100 Continue; a
    # bare 200 is an "early response" to it, and it then misreads the next
    # answer on the connection (the request hangs until its read timeout).
    put_direct(s3h, "bucket", "other", b"")

    def go() -> bytes:
        with socket.create_connection(("127.0.0.1", s3h.port), timeout=5) as s:
            s.sendall(
                b"PUT /bucket/empty HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                b"Expect: 100-continue\r\n\r\n"
                b"HEAD /bucket/empty HTTP/1.1\r\nHost: x\r\n\r\n"
            )
            out = b""
            while out.count(b"HTTP/1.1 200 ") < 2:
                chunk = s.recv(4096)
                assert chunk, out
                out += chunk
            return out

    raw = await s3h.in_thread(go)
    assert raw.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 ")
    assert raw.count(b"100 Continue") == 1
    assert s3h.backend.objects("bucket")["empty"] == b""


@pytest_twisted.ensureDeferred
async def test_request_refused_before_the_body_gets_no_100_continue_and_closes(s3h: S3Harness) -> None:
    def go() -> bytes:
        with socket.create_connection(("127.0.0.1", s3h.port), timeout=5) as s:
            s.sendall(
                b"PUT /nobucket/key HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                b"Expect: 100-continue\r\n\r\n"
            )
            out = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    return out
                out += chunk

    raw = await s3h.in_thread(go)
    head, body = _headers_and_body(raw)
    assert head.startswith(b"HTTP/1.1 404 ")
    assert b"100 Continue" not in raw
    assert b"connection: close" in head.lower()
    assert b"<Code>NoSuchBucket</Code>" in body


@pytest_twisted.ensureDeferred
async def test_transfer_encoding_chunked_upload_is_stored(s3h: S3Harness) -> None:
    put_direct(s3h, "bucket", "other", b"")
    data = bytes(range(256)) * 40
    r = await s3h.request("PUT", "/bucket/chunked", data, chunked=True)
    assert r.status == 200, r.body
    assert r.headers["etag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert s3h.backend.objects("bucket")["chunked"] == data


@pytest_twisted.ensureDeferred
async def test_client_disconnecting_mid_put_stores_nothing(s3h: S3Harness) -> None:
    put_direct(s3h, "bucket", "other", b"")

    def go() -> None:
        with socket.create_connection(("127.0.0.1", s3h.port), timeout=5) as s:
            s.sendall(b"PUT /bucket/cut HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n")
            s.sendall(b"x" * 1_000_000)

    await s3h.in_thread(go)
    await wait_for(lambda: s3h.backend.aborted_writes == 1)
    assert "cut" not in s3h.backend.objects("bucket")


@pytest_twisted.ensureDeferred
async def test_client_disconnecting_mid_get_cancels_the_read(s3h: S3Harness) -> None:
    put_direct(s3h, "bucket", "big", b"z" * (64 * 1024 * 1024))

    def go() -> bytes:
        with socket.create_connection(("127.0.0.1", s3h.port), timeout=5) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            s.sendall(b"GET /bucket/big HTTP/1.1\r\nHost: x\r\n\r\n")
            return s.recv(65536)

    first = await s3h.in_thread(go)
    assert first.startswith(b"HTTP/1.1 200 ")
    assert b"content-length: 67108864" in first.lower()
    await wait_for(lambda: s3h.backend.cancelled_reads == 1)


@pytest_twisted.ensureDeferred
async def test_large_upload_pauses_the_client_and_keeps_memory_bounded(make_harness) -> None:  # type: ignore[no-untyped-def]
    high, low = 256 * 1024, 64 * 1024
    h = make_harness(high_water=high, low_water=low)
    put_direct(h, "bucket", "other", b"")
    bodies = []
    real_put = h.backend.put_object

    class SlowBody:
        """Consumes slower than localhost delivers, so the queue must push back."""

        def __init__(self, body):  # type: ignore[no-untyped-def]
            self.body = body
            self.expected_length = body.expected_length

        def chunks(self):  # type: ignore[no-untyped-def]
            for piece in self.body.chunks():
                time.sleep(0.0005)
                yield piece

        def md5_hex(self):  # type: ignore[no-untyped-def]
            return self.body.md5_hex()

        def checksums(self):  # type: ignore[no-untyped-def]
            return self.body.checksums()

    def put_object(bucket, key, body, metadata):  # type: ignore[no-untyped-def]
        bodies.append(body)
        return real_put(bucket, key, SlowBody(body), metadata)

    h.backend.put_object = put_object
    data = b"0123456789abcdef" * (1024 * 1024)  # 16 MiB
    r = await h.request("PUT", "/bucket/big", data)
    assert r.status == 200, r.body
    assert h.backend.objects("bucket")["big"] == data
    (body,) = bodies
    assert body.pauses > 0
    # One transport read (64 KiB) may land after the pause.
    assert body.peak_buffered <= high + 65536


@pytest_twisted.ensureDeferred
async def test_pipelined_requests_after_a_streamed_body_are_served(s3h: S3Harness) -> None:
    put_direct(s3h, "bucket", "other", b"")

    def go() -> bytes:
        with socket.create_connection(("127.0.0.1", s3h.port), timeout=5) as s:
            s.sendall(
                b"PUT /bucket/p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                b"GET /bucket/p HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            out = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    return out
                out += chunk

    raw = await s3h.in_thread(go)
    assert raw.count(b"HTTP/1.1 200 ") == 2
    assert raw.endswith(b"abc")


@pytest_twisted.ensureDeferred
async def test_early_error_drains_a_small_body_and_keeps_the_connection(s3h: S3Harness) -> None:
    body = b"x" * 200_000

    def go() -> bytes:
        with socket.create_connection(("127.0.0.1", s3h.port), timeout=5) as s:
            s.sendall(b"PUT /nobucket/k HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body))
            s.sendall(body)
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return out
                out += chunk

    raw = await s3h.in_thread(go)
    assert raw.startswith(b"HTTP/1.1 404 ")
    assert b"connection: close" not in raw.split(b"\r\n\r\n")[0].lower()
    assert b"HTTP/1.1 200 " in raw and b"ListAllMyBucketsResult" in raw


@pytest_twisted.ensureDeferred
async def test_early_error_with_a_large_unread_body_closes_the_connection(s3h: S3Harness) -> None:
    def go() -> bytes:
        with socket.create_connection(("127.0.0.1", s3h.port), timeout=5) as s:
            s.sendall(b"PUT /nobucket/k HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n\r\n")
            s.sendall(b"x" * 10000)
            out = b""
            try:
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        return out
                    out += chunk
            except ConnectionResetError:
                return out

    raw = await s3h.in_thread(go)
    assert raw.startswith(b"HTTP/1.1 404 ")
    assert b"connection: close" in raw.split(b"\r\n\r\n")[0].lower()
