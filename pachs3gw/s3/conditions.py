"""Conditional requests: ``If-*`` (RFC 7232 as S3 applies it) and ``x-amz-copy-source-if-*``.

The order matters and S3 documents two deviations from a naive reading:
``If-Match`` that holds makes a failing ``If-Unmodified-Since`` irrelevant,
and ``If-None-Match`` present makes ``If-Modified-Since`` irrelevant.  HTTP
dates have one-second resolution, so the object's time is truncated to the
second before comparing (otherwise an object would always look "modified
since" its own ``Last-Modified``).  Unparseable dates are ignored, as S3 and
RFC 7232 do.  Everything here is pure and thread-agnostic.
"""

from __future__ import annotations

import email.utils
from collections.abc import Mapping
from datetime import datetime, timezone

from pachs3gw.s3 import errors
from pachs3gw.s3.interfaces import WriteConditions

__all__ = [
    "NotModified",
    "check_preconditions",
    "check_copy_source_preconditions",
    "check_write_conditions",
    "write_conditions",
    "write_conditions_kwargs",
    "format_etag",
    "normalize_etag",
    "parse_http_date",
]


class NotModified(Exception):
    """The client's cached copy is current: answer 304 with no body.

    Not an :class:`errors.S3Error` because a 304 is not an error document;
    the HTTP layer renders it with the object's ``ETag`` and ``Last-Modified``,
    which are carried here for convenience.
    """

    def __init__(self, etag: str, last_modified: datetime) -> None:
        self.etag = etag
        self.last_modified = last_modified
        super().__init__("Not Modified")


def normalize_etag(s: str) -> str:
    """Strip the weak prefix and the quotes and lower-case, so that ``"abc"``,
    ``W/"abc"``, ``abc`` and ``ABC`` compare equal.

    Clients disagree on quoting (s3cmd and some SDKs send bare hex) and some
    upper-case the MD5 hex; S3 treats them all alike. The one normaliser of
    ETags: conditions, part lists and the backends all compare through it.
    """
    s = s.strip()
    if s[:2] in ("W/", "w/"):
        s = s[2:].lstrip()
    if len(s) >= 2 and s[0] == '"' and s[-1] == '"':
        s = s[1:-1]
    return s.lower()


def format_etag(raw: str) -> str:
    """Return the quoted form S3 puts in ``ETag`` headers and XML, whatever form ``raw`` is in."""
    return f'"{normalize_etag(raw)}"'


def _etag_list_matches(header: str, etag: str) -> bool:
    """Whether an ``If-Match``/``If-None-Match`` list names ``etag`` (``*`` names any object)."""
    want = normalize_etag(etag)
    for item in header.split(","):
        item = item.strip()
        if item == "*" or (item and normalize_etag(item) == want):
            return True
    return False


def parse_http_date(value: str) -> datetime | None:
    """Parse an HTTP date (IMF-fixdate, RFC 850, asctime) or ISO 8601; ``None`` if invalid.

    Always returns an aware UTC datetime.  ISO 8601 is accepted because some
    SDKs serialise timestamp headers that way.
    """
    value = value.strip()
    if not value:
        return None
    parsed: datetime | None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        parsed = None
    if parsed is None:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    try:
        return parsed.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        return None


def _second(dt: datetime) -> datetime:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).replace(microsecond=0)


def _modified_since(last_modified: datetime, header: str) -> bool | None:
    """``True``/``False`` for a valid date, ``None`` when the header must be ignored."""
    since = parse_http_date(header)
    if since is None:
        return None
    return _second(last_modified) > since


def check_preconditions(
    headers: Mapping[str, str],
    etag: str,
    last_modified: datetime,
    *,
    is_get_or_head: bool = True,
) -> None:
    """Apply ``If-Match``, ``If-Unmodified-Since``, ``If-None-Match``, ``If-Modified-Since``.

    Raises :class:`errors.PreconditionFailed` (412) or :class:`NotModified`
    (304; only for GET/HEAD — for other methods a matching
    ``If-None-Match`` is a 412, and ``If-Modified-Since`` is not evaluated).
    ``headers`` has lowercase names.  Returns ``None`` when the request
    should proceed.
    """
    if_match = headers.get("if-match")
    if if_match is not None:
        if not _etag_list_matches(if_match, etag):
            raise errors.PreconditionFailed(extra={"Condition": "If-Match"})
    else:
        ius = headers.get("if-unmodified-since")
        if ius is not None and _modified_since(last_modified, ius) is True:
            raise errors.PreconditionFailed(extra={"Condition": "If-Unmodified-Since"})

    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        if _etag_list_matches(if_none_match, etag):
            if is_get_or_head:
                raise NotModified(format_etag(etag), last_modified)
            raise errors.PreconditionFailed(extra={"Condition": "If-None-Match"})
    elif is_get_or_head:
        ims = headers.get("if-modified-since")
        if ims is not None and _modified_since(last_modified, ims) is False:
            raise NotModified(format_etag(etag), last_modified)


def check_copy_source_preconditions(
    headers: Mapping[str, str], etag: str, last_modified: datetime
) -> None:
    """Apply the ``x-amz-copy-source-if-*`` headers of CopyObject / UploadPartCopy to the source.

    Same pairing rules as :func:`check_preconditions` (S3 documents them:
    if-match true + if-unmodified-since false → copy; if-none-match false +
    if-modified-since true → 412), but every failure is a 412: there is no
    "not modified" answer to a copy.
    """
    prefix = "x-amz-copy-source-"
    if_match = headers.get(prefix + "if-match")
    if if_match is not None:
        if not _etag_list_matches(if_match, etag):
            raise errors.PreconditionFailed(extra={"Condition": "x-amz-copy-source-If-Match"})
    else:
        ius = headers.get(prefix + "if-unmodified-since")
        if ius is not None and _modified_since(last_modified, ius) is True:
            raise errors.PreconditionFailed(
                extra={"Condition": "x-amz-copy-source-If-Unmodified-Since"}
            )
    if_none_match = headers.get(prefix + "if-none-match")
    if if_none_match is not None:
        if _etag_list_matches(if_none_match, etag):
            raise errors.PreconditionFailed(
                extra={"Condition": "x-amz-copy-source-If-None-Match"}
            )
    else:
        ims = headers.get(prefix + "if-modified-since")
        if ims is not None and _modified_since(last_modified, ims) is False:
            raise errors.PreconditionFailed(
                extra={"Condition": "x-amz-copy-source-If-Modified-Since"}
            )


def write_conditions(headers: Mapping[str, str]) -> WriteConditions | None:
    """The ``If-Match`` / ``If-None-Match`` of a write request (None: neither was sent)."""
    if_match = headers.get("if-match")
    if_none_match = headers.get("if-none-match")
    if if_match is None and if_none_match is None:
        return None
    return WriteConditions(if_match=if_match, if_none_match=if_none_match)


def write_conditions_kwargs(headers: Mapping[str, str]) -> dict[str, WriteConditions]:
    """``conditions=`` for a backend write call, only when the request has any.

    An unconditional write calls the backend exactly as before conditional
    writes existed, so a backend of an embedder's that predates them keeps
    working for every request that does not use them.
    """
    found = write_conditions(headers)
    return {} if found is None else {"conditions": found}


def check_write_conditions(conditions: WriteConditions, key: str, etag: str | None) -> None:
    """Apply a write's conditions to the object it would replace (``etag`` None: none).

    S3's conditional writes: ``If-None-Match: *`` -- write only if the key
    does not exist -- and ``If-Match: <etag>`` -- only if the current object
    has that ETag; If-Match on a missing key is NoSuchKey. An ``If-None-Match``
    naming ETags instead of ``*`` fails on a current object with one of them
    (RFC 7232; S3 itself only documents ``*``).
    """
    if conditions.if_match is not None:
        if etag is None:
            raise errors.NoSuchKey(resource=key, extra={"Key": key})
        if not _etag_list_matches(conditions.if_match, etag):
            raise errors.PreconditionFailed(extra={"Condition": "If-Match"})
    if conditions.if_none_match is not None and etag is not None:
        if _etag_list_matches(conditions.if_none_match, etag):
            raise errors.PreconditionFailed(extra={"Condition": "If-None-Match"})
