"""Authentication in the HTTP layer: SigV4/SigV2, presigned URLs, streaming chunk signatures."""

from __future__ import annotations

import hashlib
import hmac
import urllib.request
from datetime import datetime, timezone

import pytest_twisted
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.s3http.conftest import ACCESS_KEY, SECRET_KEY, S3Harness, put_direct


def _code(e: ClientError) -> str:
    return e.response["Error"]["Code"]


@pytest_twisted.ensureDeferred
async def test_right_credentials_pass_and_select_the_backend(s3h_auth: S3Harness) -> None:
    def go() -> bytes:
        c = s3h_auth.boto()
        c.create_bucket(Bucket="bucket")
        c.put_object(Bucket="bucket", Key="k", Body=b"data")
        return c.get_object(Bucket="bucket", Key="k")["Body"].read()

    assert await s3h_auth.in_thread(go) == b"data"
    assert set(s3h_auth.backend.access_keys) == {ACCESS_KEY}


@pytest_twisted.ensureDeferred
async def test_sigv2_passes(s3h_auth: S3Harness) -> None:
    def go() -> bytes:
        c = s3h_auth.boto(signature_version="s3")
        c.create_bucket(Bucket="bucket")
        c.put_object(Bucket="bucket", Key="k v", Body=b"data")
        return c.get_object(Bucket="bucket", Key="k v")["Body"].read()

    assert await s3h_auth.in_thread(go) == b"data"


@pytest_twisted.ensureDeferred
async def test_wrong_secret_is_signature_does_not_match_and_writes_nothing(s3h_auth: S3Harness) -> None:
    put_direct(s3h_auth, "bucket", "seed", b"")

    def go() -> str:
        import boto3

        c = boto3.session.Session().client(
            "s3", endpoint_url=s3h_auth.url, aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key="wrong", region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )
        try:
            c.put_object(Bucket="bucket", Key="k", Body=b"data" * 100000)
        except ClientError as e:
            return _code(e)
        return ""

    assert await s3h_auth.in_thread(go) == "SignatureDoesNotMatch"
    assert "k" not in s3h_auth.backend.objects("bucket")


@pytest_twisted.ensureDeferred
async def test_unknown_access_key_and_anonymous_are_refused(s3h_auth: S3Harness) -> None:
    put_direct(s3h_auth, "bucket", "k", b"x")
    r = await s3h_auth.request("GET", "/bucket/k")
    assert r.status == 403 and b"<Code>AccessDenied</Code>" in r.body

    def go() -> str:
        import boto3

        c = boto3.session.Session().client(
            "s3", endpoint_url=s3h_auth.url, aws_access_key_id="nobody",
            aws_secret_access_key="x", region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )
        try:
            c.get_object(Bucket="bucket", Key="k")
        except ClientError as e:
            return _code(e)
        return ""

    assert await s3h_auth.in_thread(go) == "InvalidAccessKeyId"


@pytest_twisted.ensureDeferred
async def test_presigned_get_put_and_head_work_with_plain_http(s3h_auth: S3Harness) -> None:
    put_direct(s3h_auth, "bucket", "k", b"")
    signature_version = ["s3"]

    def go() -> tuple:
        c = s3h_auth.boto(signature_version=signature_version[0])
        put_url = c.generate_presigned_url("put_object", Params={"Bucket": "bucket", "Key": "dir/f i"}, ExpiresIn=300)
        # Not urllib: it would add a Content-Type the URL was not signed with.
        put_status = s3h_auth.request_sync("PUT", put_url.split(str(s3h_auth.port), 1)[1], b"presigned").status
        get_url = c.generate_presigned_url("get_object", Params={"Bucket": "bucket", "Key": "dir/f i"}, ExpiresIn=300)
        got = urllib.request.urlopen(get_url).read()
        head_url = c.generate_presigned_url("head_object", Params={"Bucket": "bucket", "Key": "dir/f i"}, ExpiresIn=300)
        head = urllib.request.urlopen(urllib.request.Request(head_url, method="HEAD")).status
        tampered = get_url.replace("dir/f%20i", "dir/other")
        try:
            urllib.request.urlopen(tampered)
        except urllib.error.HTTPError as e:
            bad = (e.code, e.read())
        return put_status, got, head, bad

    for version in ("s3", "s3v4"):
        await s3h_auth.backend.delete_object("bucket", "dir/f i", None)
        signature_version[0] = version
        put_status, got, head, bad = await s3h_auth.in_thread(go)
        assert put_status == 200 and got == b"presigned" and head == 200
        assert bad[0] == 403 and b"SignatureDoesNotMatch" in bad[1]


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def _signed_streaming_put(port: int, path: str, payload: bytes, *, tamper: bool = False) -> tuple[int, bytes]:
    """A STREAMING-AWS4-HMAC-SHA256-PAYLOAD PUT as minio-go/mc send it, signed by hand."""
    import http.client

    now = datetime.now(timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = now.strftime("%Y%m%d")
    scope = f"{day}/us-east-1/s3/aws4_request"
    chunk = 64 * 1024
    pieces = [payload[i : i + chunk] for i in range(0, len(payload), chunk)] + [b""]
    sig_len = 64
    framed_len = sum(len(f"{len(p):x};chunk-signature=".encode()) + sig_len + 2 + len(p) + 2 for p in pieces)
    host = f"127.0.0.1:{port}"
    headers = {
        "host": host,
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "x-amz-date": amz_date,
        "x-amz-decoded-content-length": str(len(payload)),
        "content-encoding": "aws-chunked",
        "content-length": str(framed_len),
    }
    signed = sorted(headers)
    canonical = "\n".join(
        ["PUT", path, "", *(f"{h}:{headers[h]}" for h in signed), "", ";".join(signed), "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"]
    )
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(("AWS4" + SECRET_KEY).encode(), day), "us-east-1"), "s3"), "aws4_request")
    seed = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    auth = f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{scope}, SignedHeaders={';'.join(signed)}, Signature={seed}"
    body = b""
    prev = seed
    for p in pieces:
        chunk_sts = "\n".join(
            ["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, prev, hashlib.sha256(b"").hexdigest(), hashlib.sha256(p).hexdigest()]
        )
        sig = hmac.new(key, chunk_sts.encode(), hashlib.sha256).hexdigest()
        prev = sig
        data = p
        if tamper and p and p is pieces[0]:
            data = b"X" + p[1:]
        body += f"{len(p):x};chunk-signature={sig}\r\n".encode() + data + b"\r\n"
    assert len(body) == framed_len
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest("PUT", path, skip_host=True, skip_accept_encoding=True)
    for k, v in headers.items():
        conn.putheader(k, v)
    conn.putheader("authorization", auth)
    conn.endheaders()
    conn.send(body)
    r = conn.getresponse()
    return r.status, r.read()


@pytest_twisted.ensureDeferred
async def test_signed_streaming_upload_is_verified_chunk_by_chunk(s3h_auth: S3Harness) -> None:
    put_direct(s3h_auth, "bucket", "seed", b"")
    payload = bytes(range(256)) * 1000
    status, body = await s3h_auth.in_thread(_signed_streaming_put, s3h_auth.port, "/bucket/streamed", payload)
    assert status == 200, body
    assert s3h_auth.backend.objects("bucket")["streamed"] == payload
    status, body = await s3h_auth.in_thread(
        _signed_streaming_put, s3h_auth.port, "/bucket/forged", payload, tamper=True
    )
    assert status == 403 and b"SignatureDoesNotMatch" in body
    assert "forged" not in s3h_auth.backend.objects("bucket")


@pytest_twisted.ensureDeferred
async def test_auth_off_accepts_any_signature_but_still_checks_payload(s3h: S3Harness) -> None:
    put_direct(s3h, "bucket", "seed", b"")
    r = await s3h.request(
        "PUT", "/bucket/k", b"data",
        {"Authorization": "AWS4-HMAC-SHA256 Credential=x/20200101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00",
         "x-amz-content-sha256": hashlib.sha256(b"other").hexdigest()},
    )
    assert r.status == 400 and b"XAmzContentSHA256Mismatch" in r.body
    r = await s3h.request("PUT", "/bucket/k", b"data", {"Authorization": "garbage"})
    assert r.status == 200
    assert s3h.backend.access_keys[-1] is None


@pytest_twisted.ensureDeferred
async def test_backend_found_without_auth_while_asking_lets_the_request_through(
    s3h_auth: S3Harness,
) -> None:
    """Fail-closed start (backend unreachable at probe time), then WhoAmI says auth is off."""
    from twisted.internet.defer import succeed

    auth = s3h_auth.auth

    def learns_auth_is_off(access_key: str):  # type: ignore[no-untyped-def]
        auth.enabled = False
        return succeed(access_key)

    auth.secret_for = learns_auth_is_off  # type: ignore[method-assign]

    def go() -> bytes:
        c = s3h_auth.boto()
        c.create_bucket(Bucket="bucket")
        return c.list_buckets()["Buckets"][0]["Name"].encode()

    assert await s3h_auth.in_thread(go) == b"bucket"
