"""AWS Signature Version 4 for S3: Authorization header and presigned query.

S3's flavour of SigV4 does not normalise the path (no ``.``/``..`` removal,
no double encoding): the canonical URI is the path as the client encoded
it.  Clients differ in how they encode, and a signature only proves the
client meant *this* request, so the verifier accepts a signature made over
any of the few encodings real clients use of the very same path, query and
headers (see ``_candidates``).  Each attempt is one SHA-256 and one HMAC.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from urllib.parse import quote, unquote_to_bytes

from pachs3gw.s3 import errors
from pachs3gw.s3.conditions import parse_http_date
from pachs3gw.s3.signing._chunk import ChunkSignatureVerifier
from pachs3gw.s3.signing._request import (
    Credentials,
    QueryParam,
    SignedRequest,
    query_dict,
)

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
#: S3's limit for presigned URLs: seven days.
MAX_EXPIRES = 604800

_AMZ_DATE = re.compile(r"\d{8}T\d{6}Z")
_SIGNATURE = re.compile(r"[0-9a-fA-F]{64}")
_CREDENTIAL_MALFORMED = (
    'the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".'
)


def _header_malformed(detail: str) -> errors.S3Error:
    return errors.AuthorizationHeaderMalformed(f"The authorization header is malformed; {detail}")


def _query_error(message: str) -> errors.S3Error:
    return errors.AuthorizationQueryParametersError(message)


def _parse_amz_date(value: str) -> datetime | None:
    """``YYYYMMDDTHHMMSSZ`` (sliced by hand: ``strptime`` costs ~10x as much)."""
    if not _AMZ_DATE.fullmatch(value):
        return None
    try:
        return datetime(
            int(value[0:4]), int(value[4:6]), int(value[6:8]),
            int(value[9:11]), int(value[11:13]), int(value[13:15]), tzinfo=timezone.utc,
        )
    except ValueError:
        return None


def _split_credential(credential: str) -> tuple[str, str] | None:
    """``AKID/date/region/service/aws4_request`` → (access key, scope); ``None`` if malformed."""
    parts = credential.rsplit("/", 4)
    if len(parts) != 5 or not parts[0] or parts[4] != "aws4_request":
        return None
    if not re.fullmatch(r"\d{8}", parts[1]) or not parts[2] or not parts[3]:
        return None
    return parts[0], "/".join(parts[1:])


def parse_header(req: SignedRequest, authorization: str) -> Credentials:
    """Parse ``Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...``."""
    rest = authorization[len(ALGORITHM) :].strip()
    fields: dict[str, str] = {}
    for component in rest.split(","):
        component = component.strip()
        if not component:
            continue
        name, eq, value = component.partition("=")
        if not eq:
            raise _header_malformed(f'the authorization component "{component}" is malformed.')
        fields[name.strip()] = value.strip()
    for required in ("Credential", "SignedHeaders", "Signature"):
        if required not in fields:
            raise _header_malformed(f'the authorization component "{required}" is missing.')
    split = _split_credential(fields["Credential"])
    if split is None:
        raise _header_malformed(_CREDENTIAL_MALFORMED)
    access_key, scope = split
    signed_headers = tuple(h.strip().lower() for h in fields["SignedHeaders"].split(";"))
    if not all(signed_headers):
        raise _header_malformed("the SignedHeaders list is malformed.")
    if not _SIGNATURE.fullmatch(fields["Signature"]):
        raise _header_malformed("the Signature is malformed.")

    amz_date = req.header("x-amz-date")
    request_time: datetime | None
    if amz_date is not None:
        request_time = _parse_amz_date(amz_date.strip())
        amz_date = amz_date.strip()
    else:
        date = req.header("date")
        request_time = parse_http_date(date) if date else None
        amz_date = request_time.strftime("%Y%m%dT%H%M%SZ") if request_time else ""
    if request_time is None:
        raise errors.AccessDenied("AWS authentication requires a valid Date or x-amz-date header")
    if scope[:8] != amz_date[:8]:
        raise _header_malformed(
            f"Invalid credential date \"{scope[:8]}\". This date is not the same as X-Amz-Date: "
            f'"{amz_date[:8]}".'
        )
    return Credentials(
        access_key=access_key,
        scheme="v4-header",
        signature=fields["Signature"].lower(),
        signed_headers=signed_headers,
        scope=scope,
        amz_date=amz_date,
        request_time=request_time,
    )


def parse_query_auth(req: SignedRequest, params: list[QueryParam]) -> Credentials:
    """Parse presigned ``X-Amz-Algorithm``/``Credential``/``Date``/``Expires``/``SignedHeaders``/``Signature``."""
    q = query_dict(params)
    required = (
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Signature",
        "X-Amz-Date",
        "X-Amz-SignedHeaders",
        "X-Amz-Expires",
    )
    if any(name not in q for name in required):
        raise _query_error(
            "Query-string authentication version 4 requires the X-Amz-Algorithm, "
            "X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, "
            "and X-Amz-Expires parameters."
        )
    if q["X-Amz-Algorithm"] != ALGORITHM:
        raise _query_error('X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"')
    split = _split_credential(q["X-Amz-Credential"])
    if split is None:
        raise _query_error(
            'Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; '
            'expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".'
        )
    access_key, scope = split
    request_time = _parse_amz_date(q["X-Amz-Date"])
    if request_time is None:
        raise _query_error(
            "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\""
        )
    expires = q["X-Amz-Expires"]
    if not re.fullmatch(r"-?\d{1,12}", expires):
        raise _query_error("X-Amz-Expires should be a number")
    expires_in = int(expires)
    if expires_in < 0:
        raise _query_error("X-Amz-Expires must be non-negative")
    if expires_in > MAX_EXPIRES:
        raise _query_error(
            "X-Amz-Expires must be less than a week (in seconds) that is 7 days or "
            f"{MAX_EXPIRES} seconds"
        )
    if scope[:8] != q["X-Amz-Date"][:8]:
        raise _query_error(
            f"Invalid credential date \"{scope[:8]}\". This date is not the same as X-Amz-Date: "
            f'"{q["X-Amz-Date"][:8]}".'
        )
    signed_headers = tuple(h.strip().lower() for h in q["X-Amz-SignedHeaders"].split(";"))
    if not all(signed_headers):
        raise _query_error("X-Amz-SignedHeaders is malformed")
    if not _SIGNATURE.fullmatch(q["X-Amz-Signature"]):
        raise _query_error("X-Amz-Signature is malformed")
    return Credentials(
        access_key=access_key,
        scheme="v4-query",
        signature=q["X-Amz-Signature"].lower(),
        signed_headers=signed_headers,
        scope=scope,
        amz_date=q["X-Amz-Date"],
        request_time=request_time,
        expires_in=expires_in,
    )


_UNRESERVED = re.compile(rb"[A-Za-z0-9_.~-]*")
_UNRESERVED_OR_SLASH = re.compile(rb"[A-Za-z0-9_.~/-]*")


def _aws_quote(data: bytes, safe: str = "-_.~") -> bytes:
    """AWS URI encoding: everything but unreserved characters as ``%XX`` (upper case)."""
    plain = _UNRESERVED_OR_SLASH if "/" in safe else _UNRESERVED
    if plain.fullmatch(data):  # the common case: nothing to encode
        return data
    return quote(data, safe=safe).encode("ascii")


def _canonical_uris(raw_path: bytes) -> Iterator[bytes]:
    """The path as sent, then AWS's encoding of its decoded form (clients that send some characters raw)."""
    raw = raw_path or b"/"
    yield raw
    reencoded = _aws_quote(unquote_to_bytes(raw), safe="-_.~/")
    if reencoded != raw:
        yield reencoded


def _canonical_queries(params: list[QueryParam], exclude_signature: bool) -> Iterator[bytes]:
    """Canonical query strings: AWS re-encoding (sorted), then the raw pairs sorted (botocore's way)."""
    kept = [p for p in params if not (exclude_signature and p.name == b"X-Amz-Signature")]
    encoded = sorted(
        (_aws_quote(p.name), _aws_quote(p.value)) for p in kept if p.raw_name or p.has_equals
    )
    first = b"&".join(k + b"=" + v for k, v in encoded)
    yield first
    raw = b"&".join(k + b"=" + v for k, v in sorted((p.raw_name, p.raw_value) for p in kept))
    if raw != first:
        yield raw


def _canonical_header_value(values: list[str] | tuple[str, ...]) -> str:
    return ",".join(" ".join(v.split()) for v in values)


def _canonical_headers(req: SignedRequest, signed: tuple[str, ...]) -> Iterator[bytes]:
    """``name:value\\n`` for each signed header, in UTF-8 and (when possible) ISO-8859-1 bytes."""
    text = "".join(f"{name}:{_canonical_header_value(tuple(req.headers.get(name, ())))}\n" for name in signed)
    first = text.encode("utf-8", "surrogateescape")
    yield first
    try:
        latin = text.encode("latin-1")
    except UnicodeEncodeError:
        return
    if latin != first:
        yield latin


@functools.lru_cache(maxsize=1024)
def signing_key(secret_key: str, scope: str) -> bytes:
    """``HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request")``."""
    key = ("AWS4" + secret_key).encode("utf-8")
    for part in scope.split("/"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def _candidates(req: SignedRequest, creds: Credentials, payload_hash: str) -> Iterator[bytes]:
    """Every canonical request the client may have signed for this request."""
    exclude = creds.scheme == "v4-query"
    signed_list = ";".join(creds.signed_headers).encode("ascii", "replace")
    # Lazily, most likely first: a signature made the usual way costs one
    # canonical request; the other encodings are built only if it fails.
    uris = _Replayable(_canonical_uris(req.raw_path))
    queries = _Replayable(_canonical_queries(req.params, exclude))
    headers_forms = _Replayable(_canonical_headers(req, creds.signed_headers))
    for uri, query, headers in (
        (u, q, h) for u in uris for q in queries for h in headers_forms
    ):
        yield b"\n".join(
            [
                req.method.upper().encode("ascii", "replace"),
                uri,
                query,
                headers,
                signed_list,
                payload_hash.encode("ascii", "replace"),
            ]
        )


class _Replayable:
    """An iterator's items, computed on first demand and replayed on later passes."""

    def __init__(self, items: Iterator[bytes]) -> None:
        self._items = items
        self._seen: list[bytes] = []

    def __iter__(self) -> Iterator[bytes]:
        i = 0
        while True:
            if i == len(self._seen):
                try:
                    self._seen.append(next(self._items))
                except StopIteration:
                    return
            yield self._seen[i]
            i += 1


#: Under header auth, these must be signed when present (besides ``host`` and
#: every ``x-amz-*``): S3's SigV4 rules name Content-Type, and Content-MD5
#: decides what body is accepted.  botocore, minio-py and s3cmd sign every
#: header they send, so real clients never trip on this.
_SIGNED_IF_PRESENT = ("content-md5", "content-type")
#: A presigned URL signs only what its creator knew (botocore: ``host``);
#: S3 refuses any other ``x-amz-*`` header, except these two, which only
#: describe the body and the clock of whoever uses the URL.
_PRESIGNED_EXEMPT = ("x-amz-content-sha256", "x-amz-date")


def unsigned_headers(req: SignedRequest, creds: Credentials) -> list[str]:
    """The headers of ``req`` that S3 requires signed but ``creds`` did not sign.

    Without this, a captured request could be replayed with an extra
    ``x-amz-copy-source`` (or ``x-amz-metadata-directive``...) and still
    pass: the signature covers only the headers it lists.
    """
    signed = set(creds.signed_headers)
    if creds.scheme == "v4-query":
        required = [
            name for name in req.headers
            if name.startswith("x-amz-") and name not in _PRESIGNED_EXEMPT
        ]
    else:
        required = [
            name for name in req.headers
            if name.startswith("x-amz-") or name in _SIGNED_IF_PRESENT
        ]
    return sorted(name for name in required if name not in signed)


def _check_time(req: SignedRequest, creds: Credentials, max_skew: timedelta) -> None:
    assert creds.request_time is not None
    now = req.now if req.now.tzinfo else req.now.replace(tzinfo=timezone.utc)
    if creds.scheme == "v4-query":
        assert creds.expires_in is not None
        if creds.request_time - now > max_skew:
            raise errors.AccessDenied("Request is not valid yet")
        if now > creds.request_time + timedelta(seconds=creds.expires_in):
            raise errors.AccessDenied(
                "Request has expired",
                extra={
                    "X-Amz-Expires": str(creds.expires_in),
                    "Expires": (creds.request_time + timedelta(seconds=creds.expires_in)).strftime(
                        "%Y-%m-%dT%H:%M:%SZ"
                    ),
                    "ServerTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                },
            )
        return
    if abs(now - creds.request_time) > max_skew:
        raise errors.RequestTimeTooSkewed(
            extra={
                "RequestTime": creds.amz_date,
                "ServerTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "MaxAllowedSkewMilliseconds": str(int(max_skew.total_seconds() * 1000)),
            }
        )


def _payload_hash(req: SignedRequest, creds: Credentials) -> str:
    if creds.scheme == "v4-query":
        q = query_dict(req.params)
        return q.get("X-Amz-Content-Sha256", UNSIGNED_PAYLOAD)
    value = req.header("x-amz-content-sha256")
    if value is None:
        raise errors.InvalidRequest("Missing required header for this request: x-amz-content-sha256")
    return value.strip()


def verify_v4(
    req: SignedRequest, creds: Credentials, secret_key: str, max_skew: timedelta
) -> ChunkSignatureVerifier | None:
    """Check a SigV4 signature; for signed streaming bodies return the chunk verifier."""
    _check_time(req, creds, max_skew)
    if "host" not in creds.signed_headers:
        raise errors.AccessDenied("The host header must be signed.")
    unsigned = unsigned_headers(req, creds)
    if unsigned:
        raise errors.AccessDenied(
            "There were headers present in the request which were not signed",
            extra={"HeadersNotSigned": ", ".join(unsigned)},
        )
    payload_hash = _payload_hash(req, creds)
    key = signing_key(secret_key, creds.scope)
    for canonical in _candidates(req, creds, payload_hash):
        string_to_sign = "\n".join(
            [ALGORITHM, creds.amz_date, creds.scope, hashlib.sha256(canonical).hexdigest()]
        )
        expected = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
        if hmac.compare_digest(expected, creds.signature):
            break
    else:
        raise errors.SignatureDoesNotMatch(extra={"AWSAccessKeyId": creds.access_key})
    if creds.scheme == "v4-header" and payload_hash in (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER):
        return ChunkSignatureVerifier(
            key,
            creds.amz_date,
            creds.scope,
            creds.signature,
            expects_trailer=payload_hash == STREAMING_SIGNED_TRAILER,
        )
    return None
