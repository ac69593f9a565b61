"""Signature verification, cross-checked against botocore's signers and AWS's published examples."""

import hashlib
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, urlsplit

import boto3
import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.config import Config
from botocore.credentials import Credentials as BotoCredentials

from pachs3gw.s3 import errors
from pachs3gw.s3.chunked import AwsChunkedDecoder
from pachs3gw.s3.signing import SignedRequest, parse_credentials, verify

AK = "AKIAIOSFODNN7EXAMPLE"
SK = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
ENDPOINT = "http://localhost:30600"
NOW = datetime.now(timezone.utc)


def to_signed(method: str, url: str, headers: Any, now: datetime | None = None) -> SignedRequest:
    split = urlsplit(url)
    hs: dict[str, list[str]] = {}
    for name, value in headers.items():
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        hs.setdefault(name.lower(), []).append(value)
    hs.setdefault("host", [split.netloc])
    return SignedRequest(
        method=method,
        raw_path=split.path.encode("ascii"),
        raw_query=split.query.encode("ascii"),
        headers=hs,
        now=now or datetime.now(timezone.utc),
    )


class Captured(Exception):
    pass


def capture(client: Any, call: str, **kwargs: Any) -> SignedRequest:
    """Run a real boto3 call and grab the request it would send."""
    seen: list[SignedRequest] = []

    def before_send(request: Any, **_: Any) -> AWSResponse:
        seen.append(to_signed(request.method, request.url, request.headers))
        raise Captured()

    client.meta.events.register("before-send", before_send)
    with pytest.raises(Captured):
        getattr(client, call)(**kwargs)
    client.meta.events.unregister("before-send", before_send)
    return seen[0]


def client(signature_version: str = "s3v4", secret: str = SK) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=ENDPOINT,
        aws_access_key_id=AK,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(signature_version=signature_version, s3={"addressing_style": "path"},
                      retries={"max_attempts": 0}),
    )


def check(req: SignedRequest, secret: str = SK, **kw: Any) -> Any:
    creds = parse_credentials(req)
    assert creds is not None and creds.access_key == AK
    return verify(req, creds, secret, **kw)


KEYS = ["plain.txt", "with space/and+plus", "tilde~eq=amp&q?", "ünïcödé/日本語.csv", "a//b/./../c", "%41", "!$'()*,;:@"]


@pytest.mark.parametrize("version", ["s3v4", "s3"])
@pytest.mark.parametrize("key", KEYS)
def test_boto3_put_and_get_verify(version: str, key: str) -> None:
    c = client(version)
    put = capture(c, "put_object", Bucket="master.repo", Key=key, Body=b"hello", Metadata={"k": "v  w"})
    check(put)
    get = capture(c, "get_object", Bucket="master.repo", Key=key, Range="bytes=0-1",
                  ResponseContentDisposition="attachment; filename=\"x y.txt\"")
    check(get)


@pytest.mark.parametrize("version", ["s3v4", "s3"])
def test_boto3_list_and_multipart_subresources_verify(version: str) -> None:
    c = client(version)
    check(capture(c, "list_objects_v2", Bucket="b", Prefix="a b/ü", Delimiter="/", StartAfter="x+y"))
    check(capture(c, "create_multipart_upload", Bucket="b", Key="k"))
    check(capture(c, "upload_part", Bucket="b", Key="k", UploadId="u/+=", PartNumber=3, Body=b"x"))
    check(capture(c, "delete_objects", Bucket="b", Delete={"Objects": [{"Key": "a"}]}))
    check(capture(c, "list_object_versions", Bucket="b"))


@pytest.mark.parametrize("version", ["s3v4", "s3"])
def test_wrong_secret_is_signature_does_not_match(version: str) -> None:
    req = capture(client(version, secret="not-the-secret"), "get_object", Bucket="b", Key="k")
    with pytest.raises(errors.SignatureDoesNotMatch):
        check(req)


@pytest.mark.parametrize("version", ["s3v4", "s3"])
def test_tampered_signed_header_is_signature_does_not_match(version: str) -> None:
    req = capture(client(version), "put_object", Bucket="b", Key="k", Body=b"x", ContentType="text/plain")
    headers = dict(req.headers)
    headers["content-type"] = ["text/html"]
    with pytest.raises(errors.SignatureDoesNotMatch):
        check(SignedRequest(req.method, req.raw_path, req.raw_query, headers, req.now))


@pytest.mark.parametrize("version", ["s3v4", "s3"])
def test_tampered_path_or_query_is_signature_does_not_match(version: str) -> None:
    req = capture(client(version), "get_object", Bucket="b", Key="k", VersionId="abc")
    with pytest.raises(errors.SignatureDoesNotMatch):
        check(SignedRequest(req.method, req.raw_path + b"x", req.raw_query, req.headers, req.now))
    with pytest.raises(errors.SignatureDoesNotMatch):
        check(SignedRequest(req.method, req.raw_path, req.raw_query.replace(b"abc", b"abd"), req.headers, req.now))
    with pytest.raises(errors.SignatureDoesNotMatch):
        check(SignedRequest("DELETE", req.raw_path, req.raw_query, req.headers, req.now))


def test_v4_unsigned_header_is_ignored_and_missing_signed_header_fails() -> None:
    req = capture(client(), "get_object", Bucket="b", Key="k")
    headers = dict(req.headers)
    headers["user-agent"] = ["something else"]
    headers["x-forwarded-for"] = ["1.2.3.4"]
    check(SignedRequest(req.method, req.raw_path, req.raw_query, headers, req.now))
    del headers["x-amz-content-sha256"]
    with pytest.raises(errors.S3Error):
        check(SignedRequest(req.method, req.raw_path, req.raw_query, headers, req.now))


@pytest.mark.parametrize(
    "name", ["x-amz-copy-source", "x-amz-meta-new", "x-amz-acl", "content-md5", "content-type"]
)
def test_v4_header_auth_with_an_unsigned_required_header_is_access_denied(name: str) -> None:
    req = capture(client(), "put_object", Bucket="b", Key="k", Body=b"")
    headers = {n: v for n, v in req.headers.items() if n != name}
    headers[name] = ["/b/secret"]
    with pytest.raises(errors.S3Error) as e:
        check(SignedRequest(req.method, req.raw_path, req.raw_query, headers, req.now))
    assert e.value.code == "AccessDenied"
    assert e.value.extra == {"HeadersNotSigned": name}


def test_v4_boto3_signs_every_header_it_sends() -> None:
    req = capture(
        client(), "copy_object", Bucket="b", Key="k", CopySource="b/src", Metadata={"a": "1"},
        MetadataDirective="REPLACE", ContentType="text/plain",
    )
    check(req)


@pytest.mark.parametrize("version", ["s3v4", "s3"])
def test_skewed_clock_is_request_time_too_skewed(version: str) -> None:
    req = capture(client(version), "get_object", Bucket="b", Key="k")
    skewed = SignedRequest(req.method, req.raw_path, req.raw_query, req.headers, req.now + timedelta(minutes=16))
    with pytest.raises(errors.RequestTimeTooSkewed):
        check(skewed)
    check(skewed, max_skew=timedelta(minutes=20))


def presigned(version: str, method: str = "get_object", expires: int = 3600, **params: Any) -> str:
    url = client(version).generate_presigned_url(
        method, Params={"Bucket": "master.repo", "Key": "dir/a b+c~ü.txt", **params}, ExpiresIn=expires
    )
    assert isinstance(url, str)
    return url


@pytest.mark.parametrize("version", ["s3v4", "s3"])
@pytest.mark.parametrize("method", ["get_object", "put_object"])
def test_presigned_urls_verify_as_curl_would_send_them(version: str, method: str) -> None:
    url = presigned(version, method)
    http_method = "GET" if method == "get_object" else "PUT"
    req = to_signed(http_method, url, {"User-Agent": "curl/8", "Accept": "*/*", "Content-Length": "5"})
    creds = parse_credentials(req)
    assert creds is not None and creds.scheme == ("v4-query" if version == "s3v4" else "v2-query")
    assert verify(req, creds, SK) is None


@pytest.mark.parametrize("version", ["s3v4", "s3"])
def test_presigned_with_response_overrides(version: str) -> None:
    url = presigned(version, ResponseContentDisposition='attachment; filename="a b.txt"',
                    ResponseContentType="text/plain; charset=utf-8")
    check(to_signed("GET", url, {}))


@pytest.mark.parametrize("version", ["s3v4", "s3"])
def test_expired_presigned_url_is_access_denied_request_has_expired(version: str) -> None:
    url = presigned(version, expires=60)
    req = to_signed("GET", url, {}, now=datetime.now(timezone.utc) + timedelta(seconds=120))
    with pytest.raises(errors.AccessDenied) as e:
        check(req)
    assert e.value.message == "Request has expired"


def test_presigned_v4_expiry_over_a_week_is_rejected() -> None:
    url = presigned("s3v4").replace("X-Amz-Expires=3600", "X-Amz-Expires=604801")
    with pytest.raises(errors.AuthorizationQueryParametersError):
        parse_credentials(to_signed("GET", url, {}))


def test_presigned_v4_with_unsigned_amz_header_is_access_denied() -> None:
    with pytest.raises(errors.AccessDenied):
        check(to_signed("GET", presigned("s3v4"), {"x-amz-meta-evil": "1"}))


def test_presigned_tampered_is_signature_does_not_match() -> None:
    for version in ("s3v4", "s3"):
        url = presigned(version).replace("master.repo", "other.repo")
        with pytest.raises(errors.SignatureDoesNotMatch):
            check(to_signed("GET", url, {}))


# botocore's raw signers, with hand-built requests --------------------------------

def raw_request(method: str, path: str, query: str = "", headers: dict[str, str] | None = None) -> AWSRequest:
    url = f"{ENDPOINT}{path}" + (f"?{query}" if query else "")
    return AWSRequest(method=method, url=url, headers=headers or {}, data=b"")


def sign(auth: Any, req: AWSRequest) -> SignedRequest:
    auth.add_auth(req)
    return to_signed(req.method, req.url, req.headers)


BOTO_CREDS = BotoCredentials(AK, SK)


@pytest.mark.parametrize(
    "query",
    ["a=1&a=2&b=", "prefix=x%20y&prefix=x%2By", "empty&list-type=2", "k=%7E~&z=%3D", "uploads"],
)
def test_repeated_and_empty_query_params(query: str) -> None:
    req = raw_request("GET", "/b/k", query, {"x-amz-content-sha256": hashlib.sha256(b"").hexdigest()})
    check(sign(botocore.auth.S3SigV4Auth(BOTO_CREDS, "s3", "us-east-1"), req))
    req = raw_request("GET", "/b/k", query)
    check(sign(botocore.auth.HmacV1Auth(BOTO_CREDS), req))


def test_boto3_over_https_sends_unsigned_streaming_trailer() -> None:
    c = boto3.client(
        "s3", endpoint_url="https://localhost:30600", aws_access_key_id=AK, aws_secret_access_key=SK,
        region_name="us-east-1", config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 0}),
    )
    req = capture(c, "put_object", Bucket="b", Key="k", Body=b"hello")
    assert req.header("x-amz-content-sha256") == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    assert check(req) is None


def test_header_values_are_trimmed_and_collapsed() -> None:
    req = raw_request("PUT", "/b/k", "", {"x-amz-meta-a": "  lots   of\t space  ",
                                          "x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
    signed = sign(botocore.auth.S3SigV4Auth(BOTO_CREDS, "s3", "us-east-1"), req)
    check(signed)


def test_path_sent_with_raw_characters_but_signed_encoded() -> None:
    # minio-go / AWS SDKs encode per the SigV4 rules; some clients send '!' raw.
    req = raw_request("GET", "/b/a%21b", "", {"x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
    signed = sign(botocore.auth.S3SigV4Auth(BOTO_CREDS, "s3", "us-east-1"), req)
    check(SignedRequest(signed.method, b"/b/a!b", signed.raw_query, signed.headers, signed.now))


# AWS's published examples ---------------------------------------------------------

DOC_NOW = datetime(2013, 5, 24, 0, 5, tzinfo=timezone.utc)


def test_aws_doc_get_object_example() -> None:
    req = SignedRequest(
        method="GET",
        raw_path=b"/test.txt",
        raw_query=b"",
        headers={
            "host": ["examplebucket.s3.amazonaws.com"],
            "range": ["bytes=0-9"],
            "x-amz-content-sha256": ["e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"],
            "x-amz-date": ["20130524T000000Z"],
            "authorization": [
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
                "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
                "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
            ],
        },
        now=DOC_NOW,
    )
    assert check(req) is None


def test_aws_doc_streaming_put_example() -> None:
    req = SignedRequest(
        method="PUT",
        raw_path=b"/examplebucket/chunkObject.txt",
        raw_query=b"",
        headers={
            "host": ["s3.amazonaws.com"],
            "x-amz-date": ["20130524T000000Z"],
            "x-amz-storage-class": ["REDUCED_REDUNDANCY"],
            "x-amz-content-sha256": ["STREAMING-AWS4-HMAC-SHA256-PAYLOAD"],
            "content-encoding": ["aws-chunked"],
            "x-amz-decoded-content-length": ["66560"],
            "content-length": ["66824"],
            "authorization": [
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
                "SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
                "x-amz-decoded-content-length;x-amz-storage-class,"
                "Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
            ],
        },
        now=DOC_NOW,
    )
    chunk_verifier = check(req)
    assert chunk_verifier is not None
    body = (
        b"10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n"
        + b"a" * 65536
        + b"\r\n400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n"
        + b"a" * 1024
        + b"\r\n0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n"
    )
    assert len(body) == 66824
    decoder = AwsChunkedDecoder(chunk_verifier, expected_length=66560)
    out = b"".join(piece for i in range(0, len(body), 1000) for piece in decoder.feed(body[i : i + 1000]))
    assert out == b"a" * 66560
    assert decoder.finish() == {}


# parse errors -----------------------------------------------------------------------

def req_with(headers: dict[str, str], query: bytes = b"") -> SignedRequest:
    return SignedRequest("GET", b"/b/k", query, {k: [v] for k, v in headers.items()}, NOW)


def test_anonymous_request_has_no_credentials() -> None:
    assert parse_credentials(req_with({})) is None


@pytest.mark.parametrize(
    "authorization, error",
    [
        ("AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, SignedHeaders=host", errors.AuthorizationHeaderMalformed),
        ("AWS4-HMAC-SHA256 Credential=AK/2013/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=" + "0" * 64, errors.AuthorizationHeaderMalformed),
        ("AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=xyz", errors.AuthorizationHeaderMalformed),
        ("AWS4-HMAC-SHA256 garbage", errors.AuthorizationHeaderMalformed),
        ("AWS nocolon", errors.InvalidArgument),
        ("Bearer token", errors.InvalidArgument),
        ("AWS4-ECDSA-P256-SHA256 Credential=x", errors.InvalidArgument),
    ],
)
def test_malformed_authorization(authorization: str, error: type[errors.S3Error]) -> None:
    with pytest.raises(error):
        parse_credentials(req_with({"authorization": authorization, "x-amz-date": "20130524T000000Z"}))


def test_credential_date_must_match_x_amz_date() -> None:
    with pytest.raises(errors.AuthorizationHeaderMalformed):
        parse_credentials(req_with({
            "authorization": "AWS4-HMAC-SHA256 Credential=AK/20130525/us-east-1/s3/aws4_request, "
                             "SignedHeaders=host, Signature=" + "0" * 64,
            "x-amz-date": "20130524T000000Z",
        }))


def test_no_date_is_access_denied() -> None:
    with pytest.raises(errors.AccessDenied):
        parse_credentials(req_with({"authorization": "AWS AK:c2lnbmF0dXJl"}))


def test_two_auth_mechanisms_is_invalid_argument() -> None:
    with pytest.raises(errors.InvalidArgument):
        parse_credentials(req_with({"authorization": "AWS AK:sig"}, b"X-Amz-Algorithm=AWS4-HMAC-SHA256"))


def test_incomplete_presigned_parameters() -> None:
    with pytest.raises(errors.AuthorizationQueryParametersError):
        parse_credentials(req_with({}, b"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=a"))
    with pytest.raises(errors.AccessDenied):
        parse_credentials(req_with({}, b"AWSAccessKeyId=a&Signature=b"))
