"""What S3 answers on the wire: errors, ranges, conditionals, sub-resources, odd keys."""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from urllib.parse import quote

import pytest
import pytest_twisted

from pachs3gw.s3 import errors
from pachs3gw.s3.interfaces import ObjectMetadata
from tests.s3http.conftest import S3Harness, put_direct

DATA = bytes(range(256)) * 4  # 1 KiB


def _xml(body: bytes) -> ET.Element:
    return ET.fromstring(body)


def _strip_ns(tag: str) -> str:
    return tag.rpartition("}")[2]


@pytest_twisted.ensureDeferred
async def test_error_document_has_code_message_resource_and_request_id(s3h: S3Harness) -> None:
    r = await s3h.request("GET", "/nobucket/some/key")
    assert r.status == 404
    assert r.headers["content-type"] == "application/xml"
    root = _xml(r.body)
    assert root.tag == "Error"
    assert root.findtext("Code") == "NoSuchBucket"
    assert root.findtext("Message")
    assert root.findtext("Resource") == "/nobucket/some/key"
    assert root.findtext("RequestId") == r.headers["x-amz-request-id"]
    assert r.headers["x-amz-id-2"]


@pytest_twisted.ensureDeferred
async def test_head_error_has_status_and_no_body(s3h: S3Harness) -> None:
    put_direct(s3h, "bucket", "k", DATA)
    r = await s3h.request("HEAD", "/bucket/missing")
    assert r.status == 404
    assert r.body == b""
    assert r.headers["x-amz-request-id"]


@pytest_twisted.ensureDeferred
async def test_every_response_has_a_request_id(s3h: S3Harness) -> None:
    put_direct(s3h, "bucket", "k", DATA)
    for method, path in [("GET", "/"), ("GET", "/bucket"), ("GET", "/bucket/k"), ("HEAD", "/bucket/k")]:
        r = await s3h.request(method, path)
        assert r.status == 200
        assert len(r.headers["x-amz-request-id"]) == 16


@pytest.mark.parametrize(
    "header, status, expected, content_range",
    [
        ("bytes=0-9", 206, DATA[0:10], "bytes 0-9/1024"),
        ("bytes=1000-", 206, DATA[1000:], "bytes 1000-1023/1024"),
        ("bytes=-24", 206, DATA[-24:], "bytes 1000-1023/1024"),
        ("bytes=1000-5000", 206, DATA[1000:], "bytes 1000-1023/1024"),
        ("bytes=5-2", 200, DATA, None),
        ("bytes=0-1,5-6", 200, DATA, None),
    ],
)
@pytest_twisted.ensureDeferred
async def test_get_with_range(s3h: S3Harness, header: str, status: int, expected: bytes, content_range: str | None) -> None:
    put_direct(s3h, "bucket", "k", DATA)
    r = await s3h.request("GET", "/bucket/k", headers={"Range": header})
    assert r.status == status
    assert r.body == expected
    assert r.headers.get("content-range") == content_range
    assert int(r.headers["content-length"]) == len(expected)
    assert r.headers["accept-ranges"] == "bytes"


@pytest_twisted.ensureDeferred
async def test_unsatisfiable_range_is_416_with_content_range_star(s3h: S3Harness) -> None:
    put_direct(s3h, "bucket", "k", DATA)
    r = await s3h.request("GET", "/bucket/k", headers={"Range": "bytes=2000-"})
    assert r.status == 416
    assert r.headers["content-range"] == "bytes */1024"
    assert _xml(r.body).findtext("Code") == "InvalidRange"
    assert "etag" not in r.headers


@pytest_twisted.ensureDeferred
async def test_conditionals_304_and_412(s3h: S3Harness) -> None:
    put_direct(s3h, "bucket", "k", DATA)
    etag = hashlib.md5(DATA).hexdigest()
    r = await s3h.request("GET", "/bucket/k", headers={"If-None-Match": f'"{etag}"'})
    assert r.status == 304
    assert r.body == b""
    assert r.headers["etag"] == f'"{etag}"'
    r = await s3h.request("GET", "/bucket/k", headers={"If-Match": '"0000"'})
    assert r.status == 412
    assert _xml(r.body).findtext("Code") == "PreconditionFailed"
    r = await s3h.request("GET", "/bucket/k", headers={"If-Match": etag})
    assert r.status == 200 and r.body == DATA
    r = await s3h.request("HEAD", "/bucket/k", headers={"If-Modified-Since": "Sun, 01 Jan 2090 00:00:00 GMT"})
    assert r.status == 304
    r = await s3h.request("HEAD", "/bucket/k", headers={"If-Unmodified-Since": "Sun, 01 Jan 2000 00:00:00 GMT"})
    assert r.status == 412 and r.body == b""


@pytest.mark.parametrize(
    "method, path",
    [
        ("PUT", "/bucket?policy"),
        ("GET", "/bucket?cors"),
        ("PUT", "/bucket?lifecycle"),
        ("GET", "/bucket/k?tagging"),
        ("PUT", "/bucket/k?acl"),
        ("PUT", "/bucket?acl"),
        ("GET", "/bucket?encryption"),
        ("GET", "/bucket?object-lock"),
        ("POST", "/bucket/k?restore"),
        ("GET", "/bucket?website"),
        ("GET", "/bucket?notification"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_unsupported_features_are_501_not_implemented(s3h: S3Harness, method: str, path: str) -> None:
    put_direct(s3h, "bucket", "k", DATA)
    r = await s3h.request(method, path, b"" if method in ("PUT", "POST") else None)
    assert r.status == 501
    assert _xml(r.body).findtext("Code") == "NotImplemented"


@pytest_twisted.ensureDeferred
async def test_get_acl_returns_a_canned_private_acl(s3h: S3Harness) -> None:
    put_direct(s3h, "bucket", "k", DATA)
    for path in ("/bucket?acl", "/bucket/k?acl"):
        r = await s3h.request("GET", path)
        assert r.status == 200
        assert b"FULL_CONTROL" in r.body


@pytest_twisted.ensureDeferred
async def test_unknown_method_is_405(s3h: S3Harness) -> None:
    r = await s3h.request("PATCH", "/bucket/k", b"")
    assert r.status == 405
    assert _xml(r.body).findtext("Code") == "MethodNotAllowed"


@pytest_twisted.ensureDeferred
async def test_subresources_with_trailing_equals(s3h: S3Harness) -> None:
    put_direct(s3h, "bucket", "k", DATA)
    r = await s3h.request("GET", "/bucket?location=")
    assert r.status == 200 and b"LocationConstraint" in r.body
    r = await s3h.request("GET", "/bucket?versioning")
    assert b"<Status>Enabled</Status>" in r.body
    r = await s3h.request("POST", "/bucket/up?uploads=", b"")
    assert r.status == 200 and b"<UploadId>" in r.body


@pytest.mark.parametrize(
    "key",
    ["a//b", "a/b/", "sp ace", "uni/ç日本", "pct%2Fin", "plus+sign", "q?mark", "hash#x", "/lead", "semi;colon", "amp&er"],
)
@pytest_twisted.ensureDeferred
async def test_keys_with_any_characters_round_trip(s3h: S3Harness, key: str) -> None:
    put_direct(s3h, "bucket", "seed", b"")
    path = "/bucket/" + quote(key, safe="/")
    r = await s3h.request("PUT", path, b"data")
    assert r.status == 200, r.body
    assert key in s3h.backend.objects("bucket")
    r = await s3h.request("GET", path)
    assert r.body == b"data"
    r = await s3h.request("GET", "/bucket?list-type=2&encoding-type=url")
    root = _xml(r.body)
    from urllib.parse import unquote_plus

    keys = [unquote_plus(e.text or "") for e in root.iter() if _strip_ns(e.tag) == "Key"]
    assert key in keys


@pytest_twisted.ensureDeferred
async def test_encoded_slash_in_path_is_part_of_the_key(s3h: S3Harness) -> None:
    put_direct(s3h, "bucket", "seed", b"")
    r = await s3h.request("PUT", "/bucket/a%2Fb", b"x")
    assert r.status == 200
    assert "a/b" in s3h.backend.objects("bucket")


@pytest_twisted.ensureDeferred
async def test_list_v1_next_marker_only_with_delimiter(s3h: S3Harness) -> None:
    for k in ["a", "b", "c"]:
        put_direct(s3h, "bucket", k, b"x")
    r = await s3h.request("GET", "/bucket?max-keys=1")
    root = _xml(r.body)
    ns = {"s3": "http://s3.amazonaws.com/doc/2006-03-01/"}
    assert root.findtext("s3:IsTruncated", namespaces=ns) == "true"
    assert root.find("s3:NextMarker", ns) is None
    r = await s3h.request("GET", "/bucket?max-keys=1&delimiter=/")
    assert _xml(r.body).findtext("s3:NextMarker", namespaces=ns) == "a"


@pytest_twisted.ensureDeferred
async def test_list_v2_key_count_start_after_fetch_owner(s3h: S3Harness) -> None:
    for k in ["a", "b", "c/1", "c/2"]:
        put_direct(s3h, "bucket", k, b"x")
    ns = {"s3": "http://s3.amazonaws.com/doc/2006-03-01/"}
    r = await s3h.request("GET", "/bucket?list-type=2&start-after=a&delimiter=/&fetch-owner=true")
    root = _xml(r.body)
    assert root.findtext("s3:KeyCount", namespaces=ns) == "2"
    assert root.findtext("s3:StartAfter", namespaces=ns) == "a"
    assert root.find("s3:Contents/s3:Owner", ns) is not None
    assert root.findtext("s3:MaxKeys", namespaces=ns) == "1000"
    r = await s3h.request("GET", "/bucket?list-type=2")
    assert _xml(r.body).find("s3:Contents/s3:Owner", ns) is None


@pytest.mark.parametrize("query", ["max-keys=-1", "max-keys=abc", "list-type=2&continuation-token=%25%25", "encoding-type=xml"])
@pytest_twisted.ensureDeferred
async def test_bad_list_arguments_are_invalid_argument(s3h: S3Harness, query: str) -> None:
    put_direct(s3h, "bucket", "k", b"x")
    r = await s3h.request("GET", "/bucket?" + query)
    assert r.status == 400
    assert _xml(r.body).findtext("Code") == "InvalidArgument"


@pytest_twisted.ensureDeferred
async def test_max_keys_is_capped_at_1000(s3h: S3Harness) -> None:
    put_direct(s3h, "bucket", "k", b"x")
    r = await s3h.request("GET", "/bucket?max-keys=5000")
    assert b"<MaxKeys>1000</MaxKeys>" in r.body


@pytest_twisted.ensureDeferred
async def test_content_md5_mismatch_is_bad_digest_and_stores_nothing(s3h: S3Harness) -> None:
    put_direct(s3h, "bucket", "seed", b"")
    import base64

    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    r = await s3h.request("PUT", "/bucket/k", b"data", {"Content-MD5": wrong})
    assert r.status == 400
    assert _xml(r.body).findtext("Code") == "BadDigest"
    assert "k" not in s3h.backend.objects("bucket")
    assert s3h.backend.aborted_writes == 1
    r = await s3h.request("PUT", "/bucket/k", b"data", {"Content-MD5": "!!"})
    assert _xml(r.body).findtext("Code") == "InvalidDigest"


@pytest_twisted.ensureDeferred
async def test_sha256_payload_mismatch_stores_nothing(s3h: S3Harness) -> None:
    put_direct(s3h, "bucket", "seed", b"")
    r = await s3h.request("PUT", "/bucket/k", b"data", {"x-amz-content-sha256": hashlib.sha256(b"x").hexdigest()})
    assert r.status == 400
    assert _xml(r.body).findtext("Code") == "XAmzContentSHA256Mismatch"
    assert "k" not in s3h.backend.objects("bucket")


@pytest_twisted.ensureDeferred
async def test_unicode_metadata_round_trips_as_bytes(s3h: S3Harness) -> None:
    put_direct(s3h, "bucket", "seed", b"")
    value = "héllo wörld ✓".encode("utf-8")

    def go():  # type: ignore[no-untyped-def]
        import http.client

        c = http.client.HTTPConnection("127.0.0.1", s3h.port, timeout=5)
        c.putrequest("PUT", "/bucket/u")
        c.putheader("Content-Length", "1")
        c.putheader(b"x-amz-meta-note", value)  # type: ignore[arg-type]
        c.putheader("Content-Encoding", "gzip")
        c.endheaders()
        c.send(b"x")
        c.getresponse().read()
        c.putrequest("HEAD", "/bucket/u")
        c.endheaders()
        r = c.getresponse()
        r.read()
        return r.msg.get_all("x-amz-meta-note"), r.getheader("content-encoding")

    (note,), enc = await s3h.in_thread(go)
    assert note.encode("latin-1") == value
    assert enc == "gzip"


@pytest_twisted.ensureDeferred
async def test_aws_chunked_only_content_encoding_is_dropped(s3h: S3Harness) -> None:
    put_direct(s3h, "bucket", "seed", b"")
    body = b"4\r\ndata\r\n0\r\n\r\n"
    r = await s3h.request(
        "PUT",
        "/bucket/c",
        body,
        {"Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": "4",
         "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER"},
    )
    assert r.status == 200, r.body
    assert s3h.backend.objects("bucket")["c"] == b"data"
    r = await s3h.request("HEAD", "/bucket/c")
    assert "content-encoding" not in r.headers
    r = await s3h.request(
        "PUT",
        "/bucket/g",
        body,
        {"Content-Encoding": "gzip, aws-chunked", "x-amz-decoded-content-length": "4",
         "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER"},
    )
    assert r.status == 200, r.body
    r = await s3h.request("HEAD", "/bucket/g")
    assert r.headers["content-encoding"] == "gzip"


@pytest_twisted.ensureDeferred
async def test_aws_chunked_trailer_checksum_mismatch_stores_nothing(s3h: S3Harness) -> None:
    put_direct(s3h, "bucket", "seed", b"")
    from pachs3gw.s3.checksums import checksum_of

    bad = checksum_of("CRC32", b"other")
    body = b"4\r\ndata\r\n0\r\nx-amz-checksum-crc32:" + bad.encode() + b"\r\n\r\n"
    r = await s3h.request(
        "PUT",
        "/bucket/c",
        body,
        {"Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": "4",
         "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
         "x-amz-trailer": "x-amz-checksum-crc32"},
    )
    assert r.status == 400
    assert _xml(r.body).findtext("Code") == "BadDigest"
    assert "c" not in s3h.backend.objects("bucket")


@pytest_twisted.ensureDeferred
async def test_checksums_are_echoed_with_checksum_mode(s3h: S3Harness) -> None:
    put_direct(s3h, "bucket", "seed", b"")
    from pachs3gw.s3.checksums import checksum_of

    crc = checksum_of("CRC32", b"data")
    r = await s3h.request("PUT", "/bucket/k", b"data", {"x-amz-checksum-crc32": crc})
    assert r.headers["x-amz-checksum-crc32"] == crc
    r = await s3h.request("GET", "/bucket/k", headers={"x-amz-checksum-mode": "ENABLED"})
    assert r.headers["x-amz-checksum-crc32"] == crc
    r = await s3h.request("GET", "/bucket/k")
    assert "x-amz-checksum-crc32" not in r.headers


@pytest_twisted.ensureDeferred
async def test_response_overrides_and_part_number(s3h: S3Harness) -> None:
    put_direct(s3h, "bucket", "k", DATA, metadata=ObjectMetadata(headers={"content-type": "text/plain"}), part_sizes=(1000, 24))
    r = await s3h.request("GET", "/bucket/k?response-content-type=image/png&response-content-disposition=inline")
    assert r.headers["content-type"] == "image/png"
    assert r.headers["content-disposition"] == "inline"
    r = await s3h.request("GET", "/bucket/k?partNumber=2")
    assert r.status == 206
    assert r.body == DATA[1000:]
    assert r.headers["x-amz-mp-parts-count"] == "2"
    assert r.headers["content-range"] == "bytes 1000-1023/1024"
    r = await s3h.request("HEAD", "/bucket/k?partNumber=3")
    assert r.status == 416
    r = await s3h.request("GET", "/bucket/k?partNumber=0")
    assert r.status == 400


@pytest_twisted.ensureDeferred
async def test_backend_unavailable_is_503_with_retry_after(s3h: S3Harness) -> None:
    from twisted.internet.defer import fail

    s3h.backend.list_buckets = lambda: fail(errors.ServiceUnavailable(headers={"Retry-After": "2"}))  # type: ignore[method-assign]
    r = await s3h.request("GET", "/")
    assert r.status == 503
    assert r.headers["retry-after"] == "2"
    assert _xml(r.body).findtext("Code") == "ServiceUnavailable"


@pytest_twisted.ensureDeferred
async def test_unexpected_exception_is_500_and_logged(s3h: S3Harness) -> None:
    from twisted.internet.defer import fail
    from twisted.logger import globalLogPublisher

    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        s3h.backend.list_buckets = lambda: fail(ZeroDivisionError("boom"))  # type: ignore[method-assign]
        r = await s3h.request("GET", "/")
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert r.status == 500
    assert _xml(r.body).findtext("Code") == "InternalError"
    failures = [e for e in events if "log_failure" in e]
    assert any(e["log_failure"].check(ZeroDivisionError) for e in failures)
    # The access event reports the request with its error code.
    access = [e for e in events if e.get("log_namespace") == "pachs3gw.s3.access"]
    assert access and access[-1]["status"] == 500 and access[-1]["error_code"] == "InternalError"


@pytest_twisted.ensureDeferred
async def test_list_buckets_html_for_browsers(s3h: S3Harness) -> None:
    put_direct(s3h, "bucket", "k", b"")
    r = await s3h.request("GET", "/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert r.headers["content-type"].startswith("text/html")
    assert b"bucket" in r.body
