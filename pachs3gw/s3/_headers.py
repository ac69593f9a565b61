"""Object metadata as S3 headers, and headers back as metadata."""

from __future__ import annotations

import email.utils
import functools
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
            stripped = _without_aws_chunked(value)
            if stripped is None:
                continue
            value = stripped
        content[name] = value
    user = {
        name[len(_META_PREFIX) :]: value
        for name, value in headers.items()
        if name.startswith(_META_PREFIX) and len(name) > len(_META_PREFIX)
    }
    return ObjectMetadata(headers=content, user=user)


def _without_aws_chunked(value: str) -> str | None:
    """``Content-Encoding`` less its ``aws-chunked`` token, spelled as the client sent it.

    ``deflate, gzip`` stays ``deflate, gzip`` (clients compare it byte for
    byte); ``aws-chunked, gzip`` becomes ``gzip``; ``aws-chunked`` alone, None.
    """
    tokens = value.split(",")
    kept = [t for t in tokens if t.strip().lower() != "aws-chunked"]
    if len(kept) == len(tokens):
        return value
    kept = [t for t in kept if t.strip()]
    if not kept:
        return None
    # The separator the client used (", " or ","), from the token after its first comma.
    after_comma = tokens[1]
    sep = "," + after_comma[: len(after_comma) - len(after_comma.lstrip())]
    return sep.join(t.strip() for t in kept)


def _header_value(value: str) -> bytes:
    """Header bytes for a stored value: latin-1 round-trips what the client sent."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def _http_date(dt: datetime) -> bytes:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return _http_date_of_second(int(dt.timestamp() // 1))


@functools.lru_cache(maxsize=4096)
def _http_date_of_second(seconds: int) -> bytes:
    """HTTP dates have whole seconds; a HEAD or GET formats the same few again and again."""
    dt = datetime.fromtimestamp(seconds, timezone.utc)
    return email.utils.format_datetime(dt, usegmt=True).encode("ascii")
