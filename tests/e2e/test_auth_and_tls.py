"""Auth on: the access key is a Pachyderm token and signatures must verify with it.

A second gateway runs with an embedded server that knows two tokens, and TLS
on a self-signed certificate.
"""

from __future__ import annotations

import datetime
import subprocess
import urllib.request
from pathlib import Path
from typing import Iterator

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.conftest import RunningGateway, start_gateway
from tests.e2e.clients import aws, s3cmd

TOKEN = "alice-token-0123456789"
OTHER_TOKEN = "bob-token-9876543210"


def self_signed(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    key_file, cert_file = tmp / "key.pem", tmp / "cert.pem"
    key_file.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_file, cert_file


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningGateway, Path]]:
    tmp = tmp_path_factory.mktemp("secured")
    tokens = tmp / "tokens"
    tokens.write_text(f"{TOKEN} alice\n{OTHER_TOKEN} bob\n")
    key, cert = self_signed(tmp)
    running = start_gateway(
        tmp / "data", "--auth-tokens", str(tokens),
        "--port", f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}",
    )
    yield running, cert
    running.stop()


def https_url(gw: RunningGateway) -> str:
    return f"https://127.0.0.1:{gw.port}"


def client(gw: RunningGateway, cert: Path, access: str = TOKEN, secret: str = TOKEN, **config: object):  # type: ignore[no-untyped-def]
    return boto3.client(
        "s3", endpoint_url=https_url(gw), verify=str(cert),
        aws_access_key_id=access, aws_secret_access_key=secret, region_name="us-east-1",
        config=Config(**config) if config else None,
    )


def test_https_put_with_aws_chunked_trailers_and_get(secured):
    gw, cert = secured
    s3 = client(gw, cert)
    s3.create_bucket(Bucket="master.secure")
    # Over HTTPS boto3 sends an aws-chunked body with a CRC32 trailer.
    s3.put_object(Bucket="master.secure", Key="k", Body=b"secret data")
    assert s3.get_object(Bucket="master.secure", Key="k")["Body"].read() == b"secret data"


def test_sigv2_clients_are_accepted(secured):
    gw, cert = secured
    s3 = client(gw, cert, signature_version="s3")
    s3.put_object(Bucket="master.secure", Key="v2", Body=b"v2 body")
    assert s3.get_object(Bucket="master.secure", Key="v2")["Body"].read() == b"v2 body"


@pytest.mark.parametrize(
    "access,secret,code",
    [
        (TOKEN, "wrong-secret", "SignatureDoesNotMatch"),
        ("unknown-token", "unknown-token", "InvalidAccessKeyId"),
    ],
)
def test_bad_credentials_are_403_and_write_nothing(secured, access, secret, code):
    gw, cert = secured
    bad = client(gw, cert, access=access, secret=secret)
    with pytest.raises(ClientError) as e:
        bad.put_object(Bucket="master.secure", Key="intruder", Body=b"x")
    assert e.value.response["Error"]["Code"] == code
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError):
        client(gw, cert).head_object(Bucket="master.secure", Key="intruder")


def test_anonymous_request_is_denied(secured):
    gw, cert = secured
    import ssl

    context = ssl.create_default_context(cafile=str(cert))
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"{https_url(gw)}/master.secure/k", context=context)
    assert e.value.code == 403


def test_presigned_get_and_put_work_with_curl_and_expire(secured, tmp_path: Path):
    gw, cert = secured
    s3 = client(gw, cert)
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": "master.secure", "Key": "pre"}, ExpiresIn=300)
    body = tmp_path / "body"
    body.write_bytes(b"presigned body")
    subprocess.run(["curl", "-sf", "--cacert", str(cert), "-T", str(body), put_url], check=True)
    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": "master.secure", "Key": "pre"}, ExpiresIn=300)
    got = subprocess.run(["curl", "-sf", "--cacert", str(cert), get_url], check=True, capture_output=True)
    assert got.stdout == b"presigned body"
    tampered = get_url.replace("Key=pre", "Key=other").replace("/pre?", "/other?")
    denied = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", str(cert), tampered], capture_output=True, text=True)
    assert denied.stdout == "403"
    expired = s3.generate_presigned_url("get_object", Params={"Bucket": "master.secure", "Key": "pre"}, ExpiresIn=1)
    import time

    time.sleep(2.5)
    answer = subprocess.run(["curl", "-s", "--cacert", str(cert), expired], capture_output=True, text=True)
    assert "<Code>AccessDenied</Code>" in answer.stdout and "expired" in answer.stdout


def test_aws_cli_presign(secured):
    gw, cert = secured
    client(gw, cert).put_object(Bucket="master.secure", Key="cli", Body=b"cli body")
    out = aws(
        https_url(gw), "s3", "presign", "s3://master.secure/cli",
        access=TOKEN, secret=TOKEN, ca_bundle=str(cert),
    ).stdout.strip()
    got = subprocess.run(["curl", "-sf", "--cacert", str(cert), out], capture_output=True, check=True)
    assert got.stdout == b"cli body"


def test_aws_cli_cp_over_https(secured, tmp_path: Path):
    gw, cert = secured
    source = tmp_path / "f.bin"
    source.write_bytes(b"y" * 20_000_000)
    aws(https_url(gw), "s3", "cp", str(source), "s3://master.secure/clicp",
        access=TOKEN, secret=TOKEN, ca_bundle=str(cert))
    head = client(gw, cert).head_object(Bucket="master.secure", Key="clicp")
    assert head["ContentLength"] == 20_000_000


@pytest.mark.parametrize("v2", [False, True])
def test_s3cmd_default_and_signature_v2(secured, tmp_path: Path, v2: bool):
    gw, cert = secured
    extra = ["--signature-v2"] if v2 else []
    source = tmp_path / "s.txt"
    source.write_text("s3cmd over https")
    s3cmd(f"127.0.0.1:{gw.port}", tmp_path, *extra, "put", str(source), "s3://master.secure/s3cmd.txt",
          access=TOKEN, secret=TOKEN, ca_certs=str(cert))
    back = tmp_path / "back.txt"
    s3cmd(f"127.0.0.1:{gw.port}", tmp_path, *extra, "get", "--force", "s3://master.secure/s3cmd.txt", str(back),
          access=TOKEN, secret=TOKEN, ca_certs=str(cert))
    assert back.read_text() == "s3cmd over https"


def test_s3cmd_with_wrong_secret_is_refused(secured, tmp_path: Path):
    gw, cert = secured
    source = tmp_path / "s.txt"
    source.write_text("nope")
    result = s3cmd(f"127.0.0.1:{gw.port}", tmp_path, "put", str(source), "s3://master.secure/nope.txt",
                   access=TOKEN, secret="wrong", ca_certs=str(cert), check=False)
    assert result.returncode != 0 and "SignatureDoesNotMatch" in (result.stdout + result.stderr)


def test_minio_client_with_token(secured):
    from minio import Minio
    import urllib3

    gw, cert = secured
    http = urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=str(cert))
    minio = Minio(f"127.0.0.1:{gw.port}", access_key=TOKEN, secret_key=TOKEN, secure=True, http_client=http)
    import io

    minio.put_object("master.secure", "minio-obj", io.BytesIO(b"m" * 1000), 1000)
    assert minio.get_object("master.secure", "minio-obj").read() == b"m" * 1000


def test_skewed_date_is_request_time_too_skewed(secured):
    import ssl
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    import http.client

    gw, cert = secured
    request = AWSRequest(method="GET", url=f"{https_url(gw)}/master.secure/k")
    signer = S3SigV4Auth(Credentials(TOKEN, TOKEN), "s3", "us-east-1")
    import unittest.mock

    an_hour_ago = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
    with unittest.mock.patch("botocore.auth.get_current_datetime", return_value=an_hour_ago):
        signer.add_auth(request)
    prepared = request.prepare()
    conn = http.client.HTTPSConnection("127.0.0.1", gw.port, context=ssl.create_default_context(cafile=str(cert)))
    conn.request("GET", "/master.secure/k", headers=dict(prepared.headers))
    response = conn.getresponse()
    body = response.read().decode()
    assert response.status == 403 and "RequestTimeTooSkewed" in body, body


def test_browser_form_upload_checks_the_policy_signature(secured):
    """POST Object with a boto3 presigned post (SigV4 and SigV2 policies)."""
    import requests

    gw, cert = secured
    s3 = client(gw, cert)
    s3.create_bucket(Bucket="master.formauth")
    for signature_version in ("s3v4", "s3"):
        signer = client(gw, cert, signature_version=signature_version)
        form = signer.generate_presigned_post("master.formauth", f"form-{signature_version}")
        url = f"{https_url(gw)}/master.formauth"
        r = requests.post(url, data=form["fields"], files={"file": ("f", b"signed")}, verify=str(cert), timeout=30)
        assert r.status_code == 204, r.text
        assert s3.get_object(Bucket="master.formauth", Key=f"form-{signature_version}")["Body"].read() == b"signed"
        forged = client(gw, cert, secret="not-the-secret", signature_version=signature_version)
        bad = forged.generate_presigned_post("master.formauth", "forged")
        r = requests.post(url, data=bad["fields"], files={"file": ("f", b"x")}, verify=str(cert), timeout=30)
        assert r.status_code == 403 and b"SignatureDoesNotMatch" in r.content
    r = requests.post(f"{https_url(gw)}/master.formauth", data={"key": "anon"},
                      files={"file": ("f", b"x")}, verify=str(cert), timeout=30)
    assert r.status_code == 403 and b"AccessDenied" in r.content
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="master.formauth")["Contents"]]
    assert keys == ["form-s3", "form-s3v4"]
