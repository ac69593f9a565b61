"""Attacks on signed requests: a captured request replayed with headers it never signed.

S3 refuses, under SigV4 header auth and presigned URLs, any ``x-amz-*``
header (and, for header auth, Content-MD5 and Content-Type) missing from the
signed list: 403 AccessDenied "There were headers present in the request
which were not signed".  SigV2 signs every ``x-amz-*`` header by
construction, so an added one breaks the signature.  Each attack below must
write nothing; the untouched capture still works, so it was a valid request.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit
from xml.etree import ElementTree

import boto3
import pytest
from botocore.auth import HmacV1Auth, HmacV1QueryAuth, S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.conftest import RunningGateway, start_gateway

TOKEN = "carol-token-0123456789"
BUCKET = "master.sec"
SECRET_BYTES = b"the secret object"


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    tmp = tmp_path_factory.mktemp("unsigned")
    tokens = tmp / "tokens"
    tokens.write_text(f"{TOKEN} carol\n")
    running = start_gateway(tmp / "data", "--auth-tokens", str(tokens))
    s3 = _client(running)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="secret", Body=SECRET_BYTES)
    yield running
    running.stop()


def _client(gw: RunningGateway, **config: object):  # type: ignore[no-untyped-def]
    return boto3.client(
        "s3", endpoint_url=gw.url, aws_access_key_id=TOKEN, aws_secret_access_key=TOKEN,
        region_name="us-east-1", config=Config(s3={"addressing_style": "path"}, **config),  # type: ignore[arg-type]
    )


def _capture(gw: RunningGateway, method: str, path: str, body: bytes = b"", *,
             headers: dict[str, str] | None = None, scheme: str = "v4") -> dict[str, str]:
    """The headers of a request signed by botocore, as an eavesdropper would see them."""
    request = AWSRequest(method=method, url=gw.url + path, data=body, headers=headers or {})
    creds = Credentials(TOKEN, TOKEN)
    if scheme == "v4":
        S3SigV4Auth(creds, "s3", "us-east-1").add_auth(request)
    else:
        HmacV1Auth(creds).add_auth(request)
    return dict(request.headers.items())


def _send(gw: RunningGateway, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _error(body: bytes) -> dict[str, str]:
    root = ElementTree.fromstring(body)
    assert root.tag == "Error", body
    return {child.tag: child.text or "" for child in root}


def _absent(gw: RunningGateway, key: str) -> bool:
    try:
        _client(gw).head_object(Bucket=BUCKET, Key=key)
    except ClientError as e:
        return e.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    return False


@pytest.mark.parametrize(
    "added",
    [
        {"x-amz-copy-source": f"/{BUCKET}/secret"},
        {"X-Amz-Copy-Source": f"/{BUCKET}/secret", "x-amz-metadata-directive": "REPLACE"},
        {"x-amz-meta-owner": "mallory"},
        {"x-amz-tagging": "a=b"},
        {"Content-MD5": base64.b64encode(hashlib.md5(b"").digest()).decode()},
        {"Content-Type": "text/html"},
    ],
)
def test_sigv4_header_replay_with_an_unsigned_header_is_refused_and_writes_nothing(gw, added):
    key = "copy-" + hashlib.md5(repr(added).encode()).hexdigest()[:8]
    captured = _capture(gw, "PUT", f"/{BUCKET}/{key}")
    status, body = _send(gw, "PUT", f"/{BUCKET}/{key}", b"", {**captured, **added})
    error = _error(body)
    assert status == 403 and error["Code"] == "AccessDenied"
    assert error["Message"] == "There were headers present in the request which were not signed"
    assert error["HeadersNotSigned"] == ", ".join(sorted(h.lower() for h in added))
    assert _absent(gw, key)
    # The capture itself was a valid request.
    assert _send(gw, "PUT", f"/{BUCKET}/{key}", b"", captured)[0] == 200
    assert _client(gw).get_object(Bucket=BUCKET, Key=key)["Body"].read() == b""


def test_sigv4_tampered_signed_header_is_signature_does_not_match(gw):
    captured = _capture(gw, "PUT", f"/{BUCKET}/tampered", b"data", headers={"x-amz-meta-a": "1"})
    for name, value in [("x-amz-meta-a", "2"), ("X-Amz-Content-SHA256", hashlib.sha256(b"evil").hexdigest())]:
        headers = {k: v for k, v in captured.items() if k.lower() != name.lower()}
        headers[name] = value
        status, body = _send(gw, "PUT", f"/{BUCKET}/tampered", b"evil" if "sha" in name.lower() else b"data", headers)
        assert status == 403 and _error(body)["Code"] == "SignatureDoesNotMatch"
    # Same headers, another body: the signed payload hash catches it.
    status, body = _send(gw, "PUT", f"/{BUCKET}/tampered", b"evil", captured)
    assert status == 400 and _error(body)["Code"] == "XAmzContentSHA256Mismatch"
    assert _absent(gw, "tampered")


def test_sigv4_duplicate_of_a_signed_header_is_refused(gw):
    captured = _capture(gw, "PUT", f"/{BUCKET}/dup", headers={"x-amz-meta-a": "1"})
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
    try:
        conn.putrequest("PUT", f"/{BUCKET}/dup", skip_host=True, skip_accept_encoding=True)
        for k, v in captured.items():
            conn.putheader(k, v)
        conn.putheader("Host", f"127.0.0.1:{gw.port}") if "host" not in {k.lower() for k in captured} else None
        conn.putheader("x-amz-meta-a", "2")
        conn.putheader("Content-Length", "0")
        conn.endheaders()
        response = conn.getresponse()
        assert response.status == 403 and _error(response.read())["Code"] == "SignatureDoesNotMatch"
    finally:
        conn.close()
    assert _absent(gw, "dup")


def test_presigned_put_with_an_added_amz_header_is_refused(gw):
    s3 = _client(gw, signature_version="s3v4")
    url = s3.generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": "presigned"})
    assert "X-Amz-SignedHeaders=host&" in url
    target = urlsplit(url)
    path = f"{target.path}?{target.query}"
    status, body = _send(gw, "PUT", path, b"", {"x-amz-copy-source": f"/{BUCKET}/secret"})
    error = _error(body)
    assert status == 403 and error["HeadersNotSigned"] == "x-amz-copy-source"
    assert _absent(gw, "presigned")
    # What S3 lets through unsigned on a presigned URL: Content-Type, the payload hash.
    status, _ = _send(gw, "PUT", path, b"hello", {
        "Content-Type": "text/plain", "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
    })
    assert status == 200
    assert s3.get_object(Bucket=BUCKET, Key="presigned")["Body"].read() == b"hello"


def test_sigv2_replay_with_an_added_amz_header_breaks_the_signature(gw):
    captured = _capture(gw, "PUT", f"/{BUCKET}/v2copy", scheme="v2")
    for added in ({"x-amz-copy-source": f"/{BUCKET}/secret"}, {"Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg=="}):
        status, body = _send(gw, "PUT", f"/{BUCKET}/v2copy", b"", {**captured, **added})
        assert status == 403 and _error(body)["Code"] == "SignatureDoesNotMatch"
    assert _absent(gw, "v2copy")
    assert _send(gw, "PUT", f"/{BUCKET}/v2copy", b"", captured)[0] == 200


def test_sigv2_presigned_with_an_added_amz_header_is_refused(gw):
    request = AWSRequest(method="PUT", url=f"{gw.url}/{BUCKET}/v2pre", data=b"")
    HmacV1QueryAuth(Credentials(TOKEN, TOKEN), expires=300).add_auth(request)
    target = urlsplit(request.url)
    path = f"{target.path}?{target.query}"
    status, body = _send(gw, "PUT", path, b"", {"x-amz-copy-source": f"/{BUCKET}/secret"})
    assert status == 403 and _error(body)["Code"] == "SignatureDoesNotMatch"
    assert _absent(gw, "v2pre")
    assert _send(gw, "PUT", path, b"", {})[0] == 200


def test_real_clients_sign_everything_they_send(gw, tmp_path: Path):
    """boto3 (SigV4, SigV2, presigned), minio-py and s3cmd pass the stricter rule."""
    from tests.e2e.clients import aws, s3cmd

    s3 = _client(gw)
    s3.put_object(Bucket=BUCKET, Key="b3", Body=b"1", ContentType="text/x", Metadata={"a": "1"},
                  ContentMD5=base64.b64encode(hashlib.md5(b"1").digest()).decode())
    s3.copy_object(Bucket=BUCKET, Key="b3c", CopySource={"Bucket": BUCKET, "Key": "b3"},
                   MetadataDirective="REPLACE", Metadata={"b": "2"}, ContentType="text/y")
    assert s3.head_object(Bucket=BUCKET, Key="b3c")["Metadata"] == {"b": "2"}
    v2 = _client(gw, signature_version="s3")
    v2.put_object(Bucket=BUCKET, Key="b3v2", Body=b"2", Metadata={"a": "1"})
    assert v2.get_object(Bucket=BUCKET, Key="b3v2")["Body"].read() == b"2"

    from minio import Minio
    import io

    mc = Minio(f"127.0.0.1:{gw.port}", access_key=TOKEN, secret_key=TOKEN, secure=False, region="us-east-1")
    mc.put_object(BUCKET, "mc", io.BytesIO(b"minio"), 5, content_type="text/plain", metadata={"x-amz-meta-k": "v"})
    mc.copy_object(BUCKET, "mc2", __import__("minio.commonconfig", fromlist=["CopySource"]).CopySource(BUCKET, "mc"))
    assert mc.get_object(BUCKET, "mc2").read() == b"minio"

    src = tmp_path / "f.txt"
    src.write_text("cli")
    aws(gw.url, "s3", "cp", str(src), f"s3://{BUCKET}/cli.txt", access=TOKEN, secret=TOKEN)
    aws(gw.url, "s3", "cp", f"s3://{BUCKET}/cli.txt", f"s3://{BUCKET}/cli2.txt", access=TOKEN, secret=TOKEN)
    for v2flag in (False, True):
        conf = tmp_path / f"s3cmd{v2flag}"
        conf.mkdir()
        args = ["--signature-v2"] if v2flag else []
        s3cmd(f"127.0.0.1:{gw.port}", conf, *args, "put", "--mime-type=text/plain", str(src),
              f"s3://{BUCKET}/s3cmd{v2flag}.txt", access=TOKEN, secret=TOKEN)
        s3cmd(f"127.0.0.1:{gw.port}", conf, *args, "cp", f"s3://{BUCKET}/s3cmd{v2flag}.txt",
              f"s3://{BUCKET}/s3cmd{v2flag}-copy.txt", access=TOKEN, secret=TOKEN)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert {"b3c", "b3v2", "mc2", "cli2.txt", "s3cmdFalse-copy.txt", "s3cmdTrue-copy.txt"} <= keys
    assert s3.get_object(Bucket=BUCKET, Key="secret")["Body"].read() == SECRET_BYTES
