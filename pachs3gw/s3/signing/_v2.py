"""AWS Signature Version 2 for S3 (``Authorization: AWS key:sig`` and ``?AWSAccessKeyId=&Expires=&Signature=``).

Still the default of s3cmd with ``--signature-v2`` and of boto3 with
``signature_version='s3'``.  The string to sign is::

    METHOD \\n Content-MD5 \\n Content-Type \\n Date \\n
    x-amz-name:value \\n ...   (sorted)
    /path?subresource=value&...  (sorted)

Clients disagree on small things (whether ``x-amz-date`` blanks the Date
line, whether sub-resource values are decoded, whether the path is the
encoded or decoded form), so, as for SigV4, each variant real clients
produce for the same request is tried; each try is one HMAC-SHA1.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from urllib.parse import unquote_to_bytes

from pachs3gw.s3 import errors
from pachs3gw.s3.conditions import parse_http_date
from pachs3gw.s3.signing._request import (
    Credentials,
    QueryParam,
    SignedRequest,
    query_dict,
)

#: Query parameters that are part of the V2 canonical resource (S3's list,
#: as botocore and s3cmd use it).
SUBRESOURCES = frozenset(
    {
        "accelerate", "acl", "analytics", "cors", "defaultObjectAcl", "delete", "inventory",
        "lifecycle", "location", "logging", "metrics", "notification", "object-lock",
        "partNumber", "policy", "replication", "requestPayment", "restore", "select",
        "select-type", "storageClass", "tagging", "torrent", "uploadId", "uploads",
        "versionId", "versioning", "versions", "website",
        "response-cache-control", "response-content-disposition", "response-content-encoding",
        "response-content-language", "response-content-type", "response-expires",
    }
)


def parse_header(authorization: str, req: SignedRequest) -> Credentials:
    """Parse ``Authorization: AWS AccessKeyId:Signature``."""
    rest = authorization[4:].strip()
    access_key, colon, signature = rest.rpartition(":")
    if not colon or not access_key or not signature:
        raise errors.InvalidArgument(
            "AWS authorization header is invalid.  Expected AwsAccessKeyId:signature",
            extra={"ArgumentName": "Authorization", "ArgumentValue": authorization},
        )
    date = req.header("x-amz-date") or req.header("date")
    request_time = parse_http_date(date) if date else None
    if request_time is None:
        raise errors.AccessDenied("AWS authentication requires a valid Date or x-amz-date header")
    return Credentials(
        access_key=access_key.strip(),
        scheme="v2-header",
        signature=signature.strip(),
        request_time=request_time,
    )


def parse_query_auth(params: list[QueryParam]) -> Credentials:
    """Parse presigned ``AWSAccessKeyId``/``Expires``/``Signature``."""
    q = query_dict(params)
    if not all(q.get(name) for name in ("AWSAccessKeyId", "Expires", "Signature")):
        raise errors.AccessDenied(
            "Query-string authentication requires the Signature, Expires and AWSAccessKeyId "
            "parameters"
        )
    if not re.fullmatch(r"\d{1,12}", q["Expires"]):
        raise errors.AccessDenied("Invalid date (should be seconds since epoch): " + q["Expires"])
    return Credentials(
        access_key=q["AWSAccessKeyId"],
        scheme="v2-query",
        signature=q["Signature"],
        expires_at=int(q["Expires"]),
    )


def _headers_for_signing(req: SignedRequest, params: list[QueryParam], presigned: bool) -> dict[str, str]:
    """Header values by lowercase name; for presigned URLs, ``x-amz-*``/Content-* query parameters too.

    botocore signs those headers and then moves them into the query string.
    """
    out = {name: ",".join(v.strip() for v in values) for name, values in req.headers.items() if values}
    if presigned:
        for p in params:
            name = p.name.decode("utf-8", "replace").lower()
            if (name.startswith("x-amz-") or name in ("content-md5", "content-type")) and name not in out:
                out[name] = p.value.decode("utf-8", "replace").strip()
    return out


def _resources(raw_path: bytes, params: list[QueryParam]) -> list[bytes]:
    path = raw_path or b"/"
    paths = [path, unquote_to_bytes(path)]
    if path.count(b"/") == 1 and len(path) > 1:
        # A bucket: botocore (whose HmacV1 follows the virtual-host form)
        # signs "/bucket/" even when it sends "/bucket".
        paths.append(path + b"/")
    paths = list(dict.fromkeys(paths))
    subs = [p for p in params if p.name.decode("utf-8", "replace") in SUBRESOURCES]
    subs.sort(key=lambda p: p.name)

    def join(values: list[bytes]) -> bytes:
        return b"?" + b"&".join(values) if values else b""

    # botocore: decoded values, "name=value" whenever an "=" was sent.
    decoded = join([p.name + b"=" + p.value if p.has_equals else p.name for p in subs])
    raw = join([p.raw_name + b"=" + p.raw_value if p.has_equals else p.raw_name for p in subs])
    # Empty values written as bare names (S3's documented form: "?uploads").
    bare = join([p.name + b"=" + p.value if p.value else p.name for p in subs])
    queries = list(dict.fromkeys([decoded, raw, bare]))
    return [path + query for path, query in itertools.product(paths, queries)]


def _candidates(req: SignedRequest, creds: Credentials) -> Iterator[bytes]:
    params = req.params
    presigned = creds.scheme == "v2-query"
    headers = _headers_for_signing(req, params, presigned)
    if presigned:
        dates = [str(creds.expires_at)]
    elif "x-amz-date" in headers:
        dates = list(dict.fromkeys(["", headers.get("date", "")]))
    else:
        dates = [headers.get("date", "")]
    amz = "".join(
        f"{name}:{headers[name]}\n" for name in sorted(headers) if name.startswith("x-amz-")
    )
    for date in dates:
        text = "\n".join(
            [req.method.upper(), headers.get("content-md5", ""), headers.get("content-type", ""), date]
        ) + "\n" + amz
        encodings = [text.encode("utf-8", "surrogateescape")]
        try:
            encodings.append(text.encode("latin-1"))
        except UnicodeEncodeError:
            pass
        for prefix, resource in itertools.product(dict.fromkeys(encodings), _resources(req.raw_path, params)):
            yield prefix + resource


def verify_v2(req: SignedRequest, creds: Credentials, secret_key: str, max_skew: timedelta) -> None:
    """Check a SigV2 signature, the clock skew (header) or the expiry (presigned)."""
    now = req.now if req.now.tzinfo else req.now.replace(tzinfo=timezone.utc)
    if creds.scheme == "v2-query":
        assert creds.expires_at is not None
        if now.timestamp() > creds.expires_at:
            raise errors.AccessDenied(
                "Request has expired",
                extra={
                    "Expires": datetime.fromtimestamp(creds.expires_at, timezone.utc).strftime(
                        "%Y-%m-%dT%H:%M:%SZ"
                    ),
                    "ServerTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                },
            )
    else:
        assert creds.request_time is not None
        if abs(now - creds.request_time) > max_skew:
            raise errors.RequestTimeTooSkewed(
                extra={
                    "RequestTime": creds.request_time.strftime("%a, %d %b %Y %H:%M:%S GMT"),
                    "ServerTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "MaxAllowedSkewMilliseconds": str(int(max_skew.total_seconds() * 1000)),
                }
            )
    try:
        given = base64.b64decode(creds.signature.replace(" ", "+"), validate=True)
    except (ValueError, binascii.Error):
        given = b""
    key = secret_key.encode("utf-8")
    for string_to_sign in _candidates(req, creds):
        if hmac.compare_digest(hmac.new(key, string_to_sign, hashlib.sha1).digest(), given):
            return
    raise errors.SignatureDoesNotMatch(extra={"AWSAccessKeyId": creds.access_key})
