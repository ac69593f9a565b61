"""Throw arbitrary input at every parser that sees client bytes: only S3 errors may escape.

Anything else would be rendered as a 500 (a bug) — or worse, crash a worker.
Bounded so it runs in CI in a few seconds.
"""

from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pachs3gw.s3 import errors
from pachs3gw.s3.checksums import BodyVerifier
from pachs3gw.s3.chunked import AwsChunkedDecoder
from pachs3gw.s3.conditions import (
    NotModified,
    check_copy_source_preconditions,
    check_preconditions,
)
from pachs3gw.s3.ranges import parse_copy_source_range, parse_range
from pachs3gw.s3.signing import ChunkSignatureVerifier, SignedRequest, parse_credentials, verify
from pachs3gw.s3.xml_input import parse_complete_multipart, parse_create_bucket, parse_delete

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NOW = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)

text = st.text(max_size=80)
header_value = st.one_of(
    text,
    st.sampled_from(
        [
            "AWS4-HMAC-SHA256 Credential=AK/20240501/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;x-amz-date, Signature=" + "a" * 64,
            "AWS AK:c2ln",
            "20240501T120000Z",
            "Wed, 01 May 2024 12:00:00 GMT",
            "UNSIGNED-PAYLOAD",
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
            "bytes=0-",
            "*",
        ]
    ),
)
header_names = st.sampled_from(
    [
        "authorization", "x-amz-date", "date", "host", "x-amz-content-sha256", "content-md5",
        "content-type", "x-amz-checksum-crc32", "x-amz-checksum-sha256", "x-amz-checksum-foo",
        "x-amz-sdk-checksum-algorithm", "x-amz-trailer", "if-match", "if-none-match",
        "if-modified-since", "if-unmodified-since", "x-amz-copy-source-if-match",
        "x-amz-copy-source-if-modified-since", "x-amz-meta-a", "range",
    ]
)
headers_st = st.dictionaries(header_names, st.lists(header_value, min_size=1, max_size=2), max_size=8)
query_st = st.one_of(
    st.binary(max_size=120),
    st.lists(
        st.tuples(
            st.sampled_from(
                [b"X-Amz-Algorithm", b"X-Amz-Credential", b"X-Amz-Date", b"X-Amz-Expires",
                 b"X-Amz-SignedHeaders", b"X-Amz-Signature", b"AWSAccessKeyId", b"Expires",
                 b"Signature", b"uploads", b"partNumber", b"%ZZ", b""]
            ),
            st.one_of(st.binary(max_size=40), st.sampled_from([b"AWS4-HMAC-SHA256", b"3600", b"host",
                                                              b"AK%2F20240501%2Fus-east-1%2Fs3%2Faws4_request",
                                                              b"20240501T120000Z", b"a" * 64, b"99999999999"])),
        ),
        max_size=8,
    ).map(lambda pairs: b"&".join(k + b"=" + v for k, v in pairs)),
)


@FUZZ
@given(method=st.sampled_from(["GET", "PUT", "\x00", "ünï"]), path=st.binary(max_size=60),
       query=query_st, headers=headers_st, skew=st.integers(-10**6, 10**6))
def test_signature_parsers_raise_only_s3_errors(method: str, path: bytes, query: bytes,
                                                headers: dict[str, list[str]], skew: int) -> None:
    req = SignedRequest(method, path, query, headers, NOW + timedelta(seconds=skew))
    try:
        creds = parse_credentials(req)
        if creds is not None:
            verify(req, creds, "secret")
    except errors.S3Error:
        pass


@FUZZ
@given(data=st.lists(st.one_of(st.binary(max_size=64),
                               st.sampled_from([b"\r\n", b"0\r\n", b"5\r\n", b";chunk-signature=",
                                                b"x-amz-checksum-crc32:AAAAAA==\r\n", b"10000"])), max_size=12),
       signed=st.booleans(), expected=st.one_of(st.none(), st.integers(0, 100)))
def test_chunked_decoder_raises_only_s3_errors(data: list[bytes], signed: bool, expected: int | None) -> None:
    verifier = ChunkSignatureVerifier(b"k" * 32, "20240501T120000Z", "20240501/us-east-1/s3/aws4_request",
                                      "0" * 64) if signed else None
    d = AwsChunkedDecoder(verifier, max_chunk_header=64, expected_length=expected)
    try:
        for piece in data:
            d.feed(piece)
        d.finish()
    except errors.S3Error:
        pass


@FUZZ
@given(header=st.one_of(st.none(), text, st.from_regex(r"bytes=\d{0,20}-\d{0,20}", fullmatch=True)),
       size=st.integers(0, 2**63))
def test_range_parsers_raise_only_s3_errors(header: str | None, size: int) -> None:
    for fn in (parse_range, parse_copy_source_range):
        try:
            result = fn(header, size)  # type: ignore[operator]
        except errors.S3Error:
            continue
        except AttributeError:
            assert header is None and fn is parse_copy_source_range
            continue
        if result is not None:
            start, end = result
            assert 0 <= start <= end < size


@FUZZ
@given(headers=st.dictionaries(header_names, header_value, max_size=6), etag=text,
       get=st.booleans(), modified=st.datetimes(timezones=st.just(timezone.utc)))
def test_preconditions_raise_only_s3_errors_or_not_modified(headers: dict[str, str], etag: str, get: bool,
                                                            modified: datetime) -> None:
    try:
        check_preconditions(headers, etag, modified, is_get_or_head=get)
    except (errors.S3Error, NotModified):
        pass
    try:
        check_copy_source_preconditions(headers, etag, modified)
    except errors.S3Error:
        pass


@FUZZ
@given(headers=st.dictionaries(header_names, header_value, max_size=6), body=st.binary(max_size=64),
       trailers=st.dictionaries(st.sampled_from(["x-amz-checksum-crc32", "x-amz-checksum-sha256"]), text))
def test_body_verifier_raises_only_s3_errors(headers: dict[str, str], body: bytes, trailers: dict[str, str]) -> None:
    try:
        v = BodyVerifier.from_headers(headers)
        v.update(body)
        v.finish(trailers)
    except errors.S3Error:
        pass


xml_st = st.one_of(
    st.binary(max_size=200),
    st.recursive(
        st.sampled_from(["", "1", "k", "true", "&amp;", "&x;", "<!--c-->", "\"e\""]),
        lambda inner: st.tuples(
            st.sampled_from(["Delete", "Object", "Key", "VersionId", "Quiet", "CompleteMultipartUpload",
                             "Part", "PartNumber", "ETag", "ChecksumCRC32", "CreateBucketConfiguration",
                             "LocationConstraint", "x:y"]),
            st.lists(inner, max_size=3),
        ).map(lambda t: f"<{t[0]}>{''.join(t[1])}</{t[0]}>"),
        max_leaves=12,
    ).map(str.encode),
)


@FUZZ
@given(body=xml_st)
def test_xml_parsers_raise_only_s3_errors(body: bytes) -> None:
    parser: Any
    for parser in (parse_delete, parse_complete_multipart, parse_create_bucket):
        try:
            parser(body)
        except errors.S3Error:
            pass


def _boto_signed(version: str) -> tuple[str, str, dict[str, str]]:
    from botocore.auth import HmacV1Auth, S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    creds = Credentials("AK", "secret")
    req = AWSRequest(method="PUT", url="http://h:1/b/k%20x?uploadId=1&partNumber=2",
                     headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD", "x-amz-meta-a": "v"}, data=b"")
    (S3SigV4Auth(creds, "s3", "us-east-1") if version == "v4" else HmacV1Auth(creds)).add_auth(req)
    return req.method, req.url, {k.lower(): v for k, v in req.headers.items()}


SIGNED = {v: _boto_signed(v) for v in ("v4", "v2")}


@FUZZ
@given(version=st.sampled_from(["v4", "v2"]), name=header_names, value=header_value,
       extra_query=st.binary(max_size=30), cut=st.integers(0, 400))
def test_mutated_valid_requests_raise_only_s3_errors(version: str, name: str, value: str,
                                                     extra_query: bytes, cut: int) -> None:
    method, url, headers = SIGNED[version]
    headers = dict(headers)
    if name == "authorization":
        value = headers["authorization"][:cut] + value
    headers[name] = value
    path, _, query = url.split("://", 1)[1].partition("/")[2].partition("?")
    hs = {k: [v if isinstance(v, str) else v.decode("latin-1")] for k, v in headers.items()}
    hs["host"] = ["h:1"]
    req = SignedRequest(method, b"/" + path.encode(), query.encode() + extra_query, hs, datetime.now(timezone.utc))
    try:
        creds = parse_credentials(req)
        if creds is not None:
            verify(req, creds, "secret")
    except errors.S3Error:
        pass
