"""Bad requests get the right S3 XML error, and the store is left as it was."""

from __future__ import annotations

import base64
import hashlib
import http.client
import socket
import time
import zlib
from xml.etree import ElementTree

import pytest
from botocore.exceptions import ClientError


def request(gateway, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def s3_error(body: bytes) -> dict[str, str]:
    root = ElementTree.fromstring(body)
    assert root.tag == "Error"
    return {child.tag: child.text or "" for child in root}


def assert_absent(s3, bucket: str, key: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key=key)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_wrong_content_md5_is_bad_digest_and_nothing_written(gateway, s3, bucket):
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    status, headers, body = request(gateway, "PUT", f"/{bucket}/md5", b"payload", {"Content-MD5": wrong})
    error = s3_error(body)
    assert status == 400 and error["Code"] == "BadDigest"
    assert headers["x-amz-request-id"] == error["RequestId"]
    assert_absent(s3, bucket, "md5")


def test_malformed_content_md5_is_invalid_digest(gateway, s3, bucket):
    status, _, body = request(gateway, "PUT", f"/{bucket}/md5bad", b"payload", {"Content-MD5": "nope"})
    assert status == 400 and s3_error(body)["Code"] == "InvalidDigest"
    assert_absent(s3, bucket, "md5bad")


def test_wrong_crc32_checksum_is_rejected(gateway, s3, bucket):
    wrong = base64.b64encode(zlib.crc32(b"other").to_bytes(4, "big")).decode()
    status, _, body = request(gateway, "PUT", f"/{bucket}/crc", b"payload", {"x-amz-checksum-crc32": wrong})
    assert status == 400 and s3_error(body)["Code"] == "BadDigest"
    assert_absent(s3, bucket, "crc")


def test_wrong_content_sha256_is_rejected(gateway, s3, bucket):
    status, _, body = request(
        gateway, "PUT", f"/{bucket}/sha", b"payload",
        {"x-amz-content-sha256": hashlib.sha256(b"other").hexdigest()},
    )
    assert status == 400 and s3_error(body)["Code"] == "XAmzContentSHA256Mismatch"
    assert_absent(s3, bucket, "sha")


def test_right_checksums_are_accepted_and_echoed(gateway, s3, bucket):
    payload = b"checked payload"
    crc = base64.b64encode(zlib.crc32(payload).to_bytes(4, "big")).decode()
    status, _, _ = request(gateway, "PUT", f"/{bucket}/ok", payload, {
        "Content-MD5": base64.b64encode(hashlib.md5(payload).digest()).decode(),
        "x-amz-checksum-crc32": crc,
        "x-amz-content-sha256": hashlib.sha256(payload).hexdigest(),
    })
    assert status == 200
    head = s3.head_object(Bucket=bucket, Key="ok", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == crc


def test_malformed_delete_xml_is_malformed_xml(gateway, s3, bucket):
    s3.put_object(Bucket=bucket, Key="keep", Body=b"x")
    for body in (b"<Delete><Object><Key>keep</Key>", b"not xml at all", b"<Other/>"):
        status, _, reply = request(gateway, "POST", f"/{bucket}?delete", body)
        assert status == 400 and s3_error(reply)["Code"] == "MalformedXML", body
    assert s3.get_object(Bucket=bucket, Key="keep")["Body"].read() == b"x"


def test_xml_entity_bomb_is_refused(gateway, bucket):
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><Delete><Object><Key>&b;</Key></Object></Delete>'
    )
    status, _, reply = request(gateway, "POST", f"/{bucket}?delete", bomb)
    assert status == 400 and s3_error(reply)["Code"] == "MalformedXML"


def test_error_document_shape_for_missing_key(gateway, bucket):
    status, headers, body = request(gateway, "GET", f"/{bucket}/no/such/key")
    error = s3_error(body)
    assert status == 404 and error["Code"] == "NoSuchKey"
    assert error["RequestId"] == headers["x-amz-request-id"]
    assert "Message" in error and "Resource" in error


def test_unsatisfiable_range_is_416_with_content_range(gateway, s3, bucket):
    s3.put_object(Bucket=bucket, Key="r", Body=b"0123456789")
    status, headers, body = request(gateway, "GET", f"/{bucket}/r", headers={"Range": "bytes=20-30"})
    assert status == 416 and s3_error(body)["Code"] == "InvalidRange"
    assert headers.get("Content-Range") == "bytes */10"


def test_unknown_method_is_method_not_allowed(gateway, bucket):
    status, _, body = request(gateway, "PATCH", f"/{bucket}/x")
    assert status == 405 and s3_error(body)["Code"] == "MethodNotAllowed"


def test_write_to_output_branch_is_a_4xx_naming_the_branch(gateway, s3, bucket):
    from tests.e2e.pfs_direct import make_output_branch

    repo = bucket.split(".", 1)[1]
    make_output_branch(gateway, source_repo=repo, output_repo=repo + "out")
    status, _, body = request(gateway, "PUT", f"/master.{repo}out/x", b"data")
    error = s3_error(body)
    assert 400 <= status < 500, (status, error)
    assert f"{repo}out@master" in error["Message"]


def test_object_written_outside_the_gateway_serves_with_pfs_hash_etag(gateway, s3, bucket):
    from tests.e2e.pfs_direct import put_file_directly

    repo = bucket.split(".", 1)[1]
    pfs_hash = put_file_directly(gateway, repo, "master", "/outside/data.csv", b"a,b\n1,2\n")
    got = s3.get_object(Bucket=bucket, Key="outside/data.csv")
    assert got["Body"].read() == b"a,b\n1,2\n"
    assert got["ETag"] == f'"{pfs_hash}"'
    assert got["ContentType"] == "text/csv"


def test_client_disconnect_mid_put_leaves_no_object_and_no_commit(gateway, s3, bucket):
    before = s3.put_object(Bucket=bucket, Key="marker", Body=b"x")["VersionId"]
    sock = socket.create_connection(("127.0.0.1", gateway.port))
    sock.sendall(
        f"PUT /{bucket}/partial HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n".encode()
        + b"x" * 3_000_000
    )
    time.sleep(0.5)
    sock.close()
    time.sleep(1.0)
    assert_absent(s3, bucket, "partial")
    assert s3.head_object(Bucket=bucket, Key="marker")["VersionId"] == before


def test_client_disconnect_mid_get_keeps_gateway_healthy(gateway, s3, bucket):
    s3.put_object(Bucket=bucket, Key="large", Body=b"z" * (32 * 1024 * 1024))
    for _ in range(3):
        sock = socket.create_connection(("127.0.0.1", gateway.port))
        sock.sendall(f"GET /{bucket}/large HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        sock.close()
    time.sleep(0.5)
    assert s3.get_object(Bucket=bucket, Key="large", Range="bytes=0-3")["Body"].read() == b"zzzz"


def test_delete_xml_declaring_an_unknown_encoding_is_malformed_xml(gateway, s3, bucket):
    s3.put_object(Bucket=bucket, Key="keep", Body=b"x")
    for encoding in ("EBCDIC", "rot13", "utf-32"):
        body = (
            f'<?xml version="1.0" encoding="{encoding}"?>'
            "<Delete><Object><Key>keep</Key></Object></Delete>"
        ).encode()
        status, _, reply = request(gateway, "POST", f"/{bucket}?delete", body)
        assert status == 400 and s3_error(reply)["Code"] == "MalformedXML", encoding
    assert s3.get_object(Bucket=bucket, Key="keep")["Body"].read() == b"x"


@pytest.mark.parametrize(
    "host", [b"..", b"x" * 300, b"a.." + b"b" * 70, b"\xff\xfe", b"[::1", b"", b"h:99999999", b"a b"]
)
def test_garbage_host_header_gets_an_s3_answer(gateway, s3, bucket, host):
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(
            f"GET /{bucket}/k HTTP/1.1\r\n".encode() + b"Host: " + host + b"\r\nConnection: close\r\n\r\n"
        )
        response = http.client.HTTPResponse(sock)
        response.begin()
        body = response.read()
    # Auth is off here: the object is served whatever the Host says.
    assert response.status == 200 and body == b"v", (response.status, body)
    assert response.getheader("x-amz-request-id")
