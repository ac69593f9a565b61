"""The S3 layer's side of versioning, retry-safe multipart, checksums and listing (issue 13).

Over the in-memory backend, so these pin what the HTTP layer itself does:
routing, headers, XML, and what :class:`MemoryBackend` implements of the
new interface methods.
"""

from __future__ import annotations

import base64
import os
import xml.etree.ElementTree as ET
import zlib

import pytest_twisted

from tests.s3http.conftest import MIN_PART_SIZE, S3Harness, put_direct

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


@pytest_twisted.ensureDeferred
async def test_put_bucket_versioning_raw(s3h: S3Harness) -> None:
    put_direct(s3h, "bucket", "k", b"x")
    body = b'<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Enabled</Status></VersioningConfiguration>'
    r = await s3h.request("PUT", "/bucket?versioning", body)
    assert r.status == 200
    r = await s3h.request(
        "PUT", "/bucket?versioning",
        b"<VersioningConfiguration><Status>Suspended</Status></VersioningConfiguration>",
    )
    assert r.status == 409 and ET.fromstring(r.body).findtext("Code") == "InvalidBucketState"
    r = await s3h.request("PUT", "/bucket?versioning", b"<Nope/>")
    assert r.status == 400 and ET.fromstring(r.body).findtext("Code") == "MalformedXML"
    r = await s3h.request("PUT", "/nobucket?versioning", body)
    assert r.status == 404
    r = await s3h.request("GET", "/bucket?versioning")
    assert b"<Status>Enabled</Status>" in r.body


@pytest_twisted.ensureDeferred
async def test_multipart_with_checksum_algorithm_and_repeated_complete(s3h: S3Harness) -> None:
    def go() -> tuple:
        c = s3h.boto()
        c.create_bucket(Bucket="bucket")
        created = c.create_multipart_upload(Bucket="bucket", Key="k", ChecksumAlgorithm="CRC32")
        data = [os.urandom(MIN_PART_SIZE), b"tail"]
        parts = []
        for n, body in enumerate(data, 1):
            up = c.upload_part(
                Bucket="bucket", Key="k", UploadId=created["UploadId"], PartNumber=n, Body=body,
                ChecksumAlgorithm="CRC32",
            )
            parts.append({"PartNumber": n, "ETag": up["ETag"], "ChecksumCRC32": up["ChecksumCRC32"]})
        args = dict(Bucket="bucket", Key="k", UploadId=created["UploadId"],
                    MultipartUpload={"Parts": parts})
        first = c.complete_multipart_upload(**args)
        again = c.complete_multipart_upload(**args)
        head = c.head_object(Bucket="bucket", Key="k", ChecksumMode="ENABLED")
        return created, data, first, again, head

    created, data, first, again, head = await s3h.in_thread(go)
    assert created["ChecksumAlgorithm"] == "CRC32"
    crcs = b"".join(zlib.crc32(d).to_bytes(4, "big") for d in data)
    expected = base64.b64encode(zlib.crc32(crcs).to_bytes(4, "big")).decode() + "-2"
    assert first["ChecksumCRC32"] == expected == again["ChecksumCRC32"]
    assert first["VersionId"] == again["VersionId"]
    assert head["ChecksumCRC32"] == expected
    assert len(s3h.backend.buckets["bucket"].versions["k"]) == 1


@pytest_twisted.ensureDeferred
async def test_full_object_checksum_type_is_refused_up_front(s3h: S3Harness) -> None:
    put_direct(s3h, "bucket", "k", b"x")
    r = await s3h.request(
        "POST", "/bucket/k?uploads", b"",
        {"x-amz-checksum-algorithm": "CRC32", "x-amz-checksum-type": "FULL_OBJECT"},
    )
    assert r.status == 501
    r = await s3h.request("POST", "/bucket/k?uploads", b"", {"x-amz-checksum-algorithm": "CRC7"})
    assert r.status == 400
    r = await s3h.request("POST", "/bucket/k?uploads", b"", {"x-amz-checksum-algorithm": "sha1"})
    assert r.status == 200 and r.headers["x-amz-checksum-algorithm"] == "SHA1"


@pytest_twisted.ensureDeferred
async def test_list_buckets_raw_paging(s3h: S3Harness) -> None:
    for name in ("a-1", "a-2", "a-3", "b-1"):
        put_direct(s3h, name, "k", b"x")
    r = await s3h.request("GET", "/?max-buckets=2&prefix=a-")
    root = ET.fromstring(r.body)
    assert [n.text for n in root.iter(NS + "Name")] == ["a-1", "a-2"]
    token = root.findtext(NS + "ContinuationToken")
    assert token and root.findtext(NS + "Prefix") == "a-"
    r = await s3h.request("GET", f"/?max-buckets=2&prefix=a-&continuation-token={token}")
    root = ET.fromstring(r.body)
    assert [n.text for n in root.iter(NS + "Name")] == ["a-3"]
    assert root.find(NS + "ContinuationToken") is None
    r = await s3h.request("GET", "/?max-buckets=0")
    assert r.status == 400
    r = await s3h.request("GET", "/")
    assert len(list(ET.fromstring(r.body).iter(NS + "Name"))) == 4
