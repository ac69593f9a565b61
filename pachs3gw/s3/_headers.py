"""Object metadata as S3 headers, and headers back as metadata."""

from __future__ import annotations

import email.utils
from collections.abc import Mapping
from datetime import datetime, timezone

from pachs3gw.s3.interfaces import ObjectMetadata

_CONTENT_HEADERS = (
    "content-type",
    "content-encoding",
    "content-disposition",
    "content-language",
    "cache-control",
    "expires",
)
_META_PREFIX = "x-amz-meta-"


def _metadata_from_headers(headers: Mapping[str, str]) -> ObjectMetadata:
    """The content headers and ``x-amz-meta-*`` of a PUT, as the backend stores them.

    ``aws-chunked`` is a transfer detail, not the object's encoding: it is
    stripped, and Content-Encoding dropped when nothing else is left.
    Values stay the latin-1 decoding of the bytes received, so whatever the
    client sent (raw UTF-8, RFC 2047) comes back byte for byte.
    """
    content: dict[str, str] = {}
    for name in _CONTENT_HEADERS:
        value = headers.get(name)
        if value is None:
            continue
        if name == "content-encoding":
            tokens = [
                t.strip() for t in value.split(",") if t.strip() and t.strip().lower() != "aws-chunked"
            ]
            if not tokens:
                continue
            value = ",".join(tokens)
        content[name] = value
    user = {
        name[len(_META_PREFIX) :]: value
        for name, value in headers.items()
        if name.startswith(_META_PREFIX) and len(name) > len(_META_PREFIX)
    }
    return ObjectMetadata(headers=content, user=user)


def _header_value(value: str) -> bytes:
    """Header bytes for a stored value: latin-1 round-trips what the client sent."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def _http_date(dt: datetime) -> bytes:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return email.utils.format_datetime(dt.astimezone(timezone.utc), usegmt=True).encode("ascii")
