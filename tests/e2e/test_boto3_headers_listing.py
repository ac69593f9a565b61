"""Headers that come back as sent, ListBuckets paging, GetObjectAttributes (issue 13, point 6)."""

from __future__ import annotations

import hashlib
import http.client
import os
from urllib.parse import urlparse

import pytest
from botocore.exceptions import ClientError


def raw(gateway, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    """One request with http.client: exactly these headers, nothing an SDK would add."""
    url = urlparse(gateway.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_content_encoding_with_several_codings_comes_back_exactly_as_sent(s3, bucket):
    s3.put_object(Bucket=bucket, Key="enc", Body=b"x", ContentEncoding="deflate, gzip")
    assert s3.head_object(Bucket=bucket, Key="enc")["ContentEncoding"] == "deflate, gzip"
    got = s3.get_object(Bucket=bucket, Key="enc")
    assert got["ContentEncoding"] == "deflate, gzip"


def test_aws_chunked_listed_on_a_plain_body_is_dropped_not_refused(gateway, s3, bucket):
    status, _, body = raw(
        gateway, "PUT", f"/{bucket}/plain", b"plain body",
        {"Content-Encoding": "aws-chunked, gzip", "Content-Length": "10"},
    )
    assert status == 200, body
    got = s3.get_object(Bucket=bucket, Key="plain")
    assert got["Body"].read() == b"plain body"
    assert got["ContentEncoding"] == "gzip"
    status, _, body = raw(
        gateway, "PUT", f"/{bucket}/only", b"abc",
        {"Content-Encoding": "aws-chunked", "Content-Length": "3"},
    )
    assert status == 200, body
    head = s3.head_object(Bucket=bucket, Key="only")
    assert "ContentEncoding" not in head and head["ContentLength"] == 3


def test_list_buckets_pages_with_max_buckets_continuation_token_and_prefix(s3):
    stem = f"lb{os.getpid()}"
    names = [f"master.{stem}n{i}" for i in range(5)]
    for name in names:
        s3.create_bucket(Bucket=name)
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        kwargs = {"MaxBuckets": 2, "Prefix": f"master.{stem}"}
        if token:
            kwargs["ContinuationToken"] = token
        page = s3.list_buckets(**kwargs)
        pages += 1
        assert len(page["Buckets"]) <= 2
        assert page["Prefix"] == f"master.{stem}"
        seen += [b["Name"] for b in page["Buckets"]]
        token = page.get("ContinuationToken")
        if not token:
            break
    assert seen == sorted(names) and pages == 3
    everything = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert set(names) <= set(everything)
    with pytest.raises(ClientError) as e:
        s3.list_buckets(MaxBuckets=2, ContinuationToken="%%%not-a-token")
    assert e.value.response["Error"]["Code"] == "InvalidArgument"


def test_get_object_attributes_of_a_single_put(s3, bucket):
    body = os.urandom(1000)
    put = s3.put_object(Bucket=bucket, Key="attr", Body=body, ChecksumAlgorithm="SHA256")
    got = s3.get_object_attributes(
        Bucket=bucket, Key="attr",
        ObjectAttributes=["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"],
    )
    assert got["ETag"] == hashlib.md5(body).hexdigest()
    assert got["ObjectSize"] == 1000
    assert got["StorageClass"] == "STANDARD"
    assert got["Checksum"]["ChecksumSHA256"] == put["ChecksumSHA256"]
    assert got["Checksum"]["ChecksumType"] == "FULL_OBJECT"
    assert "ObjectParts" not in got
    assert got["VersionId"] == put["VersionId"]
    only = s3.get_object_attributes(Bucket=bucket, Key="attr", ObjectAttributes=["ObjectSize"])
    assert only["ObjectSize"] == 1000 and "ETag" not in only


def test_get_object_attributes_errors(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.get_object_attributes(Bucket=bucket, Key="missing", ObjectAttributes=["ETag"])
    assert e.value.response["Error"]["Code"] == "NoSuchKey"


def test_get_object_attributes_needs_the_attribute_header(gateway, s3, bucket):
    s3.put_object(Bucket=bucket, Key="a", Body=b"1")
    status, _, body = raw(gateway, "GET", f"/{bucket}/a?attributes")
    assert status == 400 and b"InvalidArgument" in body
    status, _, body = raw(
        gateway, "GET", f"/{bucket}/a?attributes", headers={"x-amz-object-attributes": "Colour"}
    )
    assert status == 400 and b"InvalidArgument" in body
    status, headers, body = raw(
        gateway, "GET", f"/{bucket}/a?attributes", headers={"x-amz-object-attributes": "ETag"}
    )
    assert status == 200 and b"<ETag>c4ca4238a0b923820dcc509a6f75849b</ETag>" in body
    assert "last-modified" in headers
