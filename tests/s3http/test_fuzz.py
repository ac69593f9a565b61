"""Random headers and paths against the running server: never a 500, always an S3 answer."""

from __future__ import annotations

import pytest_twisted
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.s3http.conftest import S3Harness, put_direct

_HEADER_NAMES = [
    "Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since",
    "Content-MD5", "x-amz-content-sha256", "x-amz-checksum-crc32", "x-amz-checksum-sha256",
    "x-amz-sdk-checksum-algorithm", "x-amz-trailer", "x-amz-decoded-content-length",
    "Content-Encoding", "x-amz-copy-source", "x-amz-copy-source-range", "x-amz-metadata-directive",
    "x-amz-copy-source-if-match", "x-amz-checksum-mode", "Authorization", "x-amz-date",
]
_VALUE = st.one_of(
    st.sampled_from(["", "bytes=0-1", "bytes=-5", "bytes=9-", "*", '"abc"', "aws-chunked",
                     "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "UNSIGNED-PAYLOAD", "CRC32",
                     "x-amz-checksum-crc32", "/bucket/k", "bucket/k?versionId=zz", "REPLACE",
                     "ENABLED", "AAAAAA==", "Sun, 06 Nov 1994 08:49:37 GMT", "12"]),
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=30),
)


@pytest_twisted.ensureDeferred
async def test_random_requests_never_get_a_500(s3h: S3Harness) -> None:
    put_direct(s3h, "bucket", "k", b"0123456789")

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        st.sampled_from(["GET", "HEAD", "PUT", "POST", "DELETE"]),
        st.sampled_from(["/", "/bucket", "/bucket/k", "/bucket/new", "/nobucket/k",
                         "/bucket/k?uploadId=x&partNumber=1", "/bucket?delete", "/bucket/k?uploads",
                         "/bucket?list-type=2&max-keys=2", "/bucket/k?partNumber=1"]),
        st.dictionaries(st.sampled_from(_HEADER_NAMES), _VALUE, max_size=4),
        st.binary(max_size=64),
    )
    def check(method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        r = s3h.request_sync(method, path, body if method in ("PUT", "POST") else None, headers)
        assert r.status < 500 or r.status == 501, (r.status, r.body)
        assert r.headers.get("x-amz-request-id")
        if r.status >= 400 and method != "HEAD":
            assert b"<Error>" in r.body

    await s3h.in_thread(check)


@pytest_twisted.ensureDeferred
async def test_malformed_raw_requests_are_all_answered_without_a_5xx(s3h: S3Harness) -> None:
    """The request generator the real-gateway fuzz uses (tests/fuzz_requests.py), over raw sockets."""
    from tests.fuzz_requests import EXISTING, exchange, requests, status_of

    for key, data in EXISTING.items():
        put_direct(s3h, "bucket", key, data)
    before = dict(s3h.backend.objects("bucket"))

    def run() -> list[tuple[bytes, bytes]]:
        bad = []
        for raw in requests(seed=7, count=300, read_bucket="bucket", void_bucket="nobucket"):
            answer = exchange(s3h.port, raw)
            try:
                status = status_of(answer)
            except AssertionError:
                bad.append((raw[:200], answer[:200]))
                continue
            if status >= 500 and status != 501:
                bad.append((raw[:200], answer[:300]))
        return bad

    assert await s3h.in_thread(run) == []
    assert s3h.backend.objects("bucket") == before
    assert set(s3h.backend.buckets) == {"bucket"}
