"""Issue 12 point 6 through the real gateway (twistd): header size, 5 GiB, slow headers, stalled bodies.

``tests/s3http/test_limits.py`` checks each limit on the S3 layer; here the
defaults and the command-line flags reach the listening gateway.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Iterator
from xml.etree import ElementTree

import pytest
from botocore.exceptions import ClientError

from tests.conftest import RunningGateway, start_gateway
from tests.fuzz_requests import exchange

GIB5 = 5 * 1024**3


def code(raw: bytes) -> tuple[int, str]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), ElementTree.fromstring(body).findtext("Code") or ""


def test_headers_over_16_kib_are_answered_not_dropped(gateway: RunningGateway, bucket: str) -> None:
    big = b"GET /%s/k HTTP/1.1\r\nHost: x\r\nx-big: %s\r\n\r\n" % (bucket.encode(), b"v" * 17000)
    assert code(exchange(gateway.port, big)) == (400, "RequestHeaderSectionTooLarge")
    line = b"GET /%s/%s HTTP/1.1\r\nHost: x\r\n\r\n" % (bucket.encode(), b"k" * 17000)
    assert code(exchange(gateway.port, line)) == (400, "RequestHeaderSectionTooLarge")


def test_the_longest_key_fully_percent_encoded_fits_the_header_limit(s3, bucket: str) -> None:  # type: ignore[no-untyped-def]
    key = "日" * 341 + "x"  # 1024 bytes: ~3 KiB of request line, with signed headers
    assert len(key.encode()) == 1024
    s3.put_object(Bucket=bucket, Key=key, Body=b"long", Metadata={"m": "v" * 1500})
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"long"
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key=key + "y", Body=b"")
    assert e.value.response["Error"]["Code"] == "KeyTooLongError"


@pytest.mark.parametrize("header", ["Content-Length: %d" % (GIB5 + 1), "x-amz-decoded-content-length: %d" % (GIB5 + 1)])
def test_a_put_declaring_over_5_gib_is_refused_at_once(gateway: RunningGateway, bucket: str, header: str) -> None:
    started = time.monotonic()
    length = "" if header.startswith("Content-Length") else "Content-Length: 10\r\n"
    request = f"PUT /{bucket}/huge HTTP/1.1\r\nHost: x\r\n{header}\r\n{length}Expect: 100-continue\r\n\r\n"
    raw = exchange(gateway.port, request.encode())
    assert time.monotonic() - started < 5
    assert code(raw) == (400, "EntityTooLarge") and b"100 Continue" not in raw


@pytest.fixture(scope="module")
def impatient(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    """A gateway whose header deadline and body window are one second (the flags)."""
    data: Path = tmp_path_factory.mktemp("impatient") / "data"
    running = start_gateway(
        data, "--header-timeout", "1", "--body-timeout", "1", "--body-min-bytes", "1"
    )
    yield running
    running.stop()


def test_flags_bound_the_time_to_send_headers(impatient: RunningGateway) -> None:
    def slow() -> bytes:
        with socket.create_connection(("127.0.0.1", impatient.port), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
            out = b""
            for _ in range(40):
                try:
                    s.sendall(b"x")
                    s.settimeout(0.1)
                    out += s.recv(65536)
                    if out:
                        break
                except socket.timeout:
                    continue
                except OSError:
                    break
            return out

    started = time.monotonic()
    raw = slow()
    assert code(raw) == (400, "RequestTimeout") and time.monotonic() - started < 4


def test_flags_bound_a_stalled_body_and_nothing_is_stored(impatient: RunningGateway) -> None:
    import boto3

    s3 = boto3.client(
        "s3", endpoint_url=impatient.url, aws_access_key_id="a", aws_secret_access_key="b",
        region_name="us-east-1",
    )
    s3.create_bucket(Bucket="master.stall")
    started = time.monotonic()
    raw = exchange(
        impatient.port,
        b"PUT /master.stall/stalled HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789",
    )
    assert code(raw) == (400, "RequestTimeout") and time.monotonic() - started < 8
    assert "Contents" not in s3.list_objects_v2(Bucket="master.stall")
