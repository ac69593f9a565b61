"""The XML documents S3 answers with, rendered from the backend's values.

Each public function returns the complete document as UTF-8 bytes.  The
documents are small (a page of a listing at most), so they are built as
strings; what matters is the escaping: keys may hold any character, and
characters XML 1.0 cannot carry are written as numeric references the way
S3 does (clients that care ask for ``encoding-type=url``, which botocore
always does).

Everything here is pure and thread-agnostic.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from urllib.parse import quote

from pachs3gw.s3.conditions import format_etag, normalize_etag
from pachs3gw.s3.interfaces import (
    BucketEntry,
    ListPage,
    ObjectVersion,
    PartsPage,
    UploadsPage,
    VersionsPage,
)

__all__ = [
    "S3_NAMESPACE",
    "OWNER_ID",
    "access_control_policy",
    "complete_multipart_upload_result",
    "copy_object_result",
    "copy_part_result",
    "delete_result",
    "encode_key",
    "error",
    "format_timestamp",
    "initiate_multipart_upload_result",
    "list_all_my_buckets",
    "list_bucket_result_v1",
    "list_bucket_result_v2",
    "list_multipart_uploads_result",
    "list_parts_result",
    "list_versions_result",
    "location_constraint",
    "versioning_configuration",
]

S3_NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
#: The one owner every bucket and object has (PFS has no per-object owner).
OWNER_ID = "pachs3gw"
OWNER_DISPLAY_NAME = "pachs3gw"

_PROLOG = '<?xml version="1.0" encoding="UTF-8"?>\n'
# Characters escaped in text: markup characters, CR (an XML parser would turn
# it into LF), and everything XML 1.0 does not allow as a literal.
_NEEDS_ESCAPE = re.compile("[&<>\"\r\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}


def _escape_char(m: re.Match[str]) -> str:
    c = m.group(0)
    return _ENTITIES.get(c) or f"&#x{ord(c):X};"


def _escape(text: str) -> str:
    if _NEEDS_ESCAPE.search(text) is None:  # most text: nothing to escape, no new string
        return text
    return _NEEDS_ESCAPE.sub(_escape_char, text)


def _t(tag: str, text: object) -> str:
    """One element with text content."""
    if isinstance(text, bool):
        text = "true" if text else "false"
    return f"<{tag}>{_escape(str(text))}</{tag}>"


def _e(tag: str, children: Iterable[str]) -> str:
    """One element with (already rendered) children."""
    return f"<{tag}>{''.join(children)}</{tag}>"


def _document(root: str, children: Iterable[str], *, namespace: bool = True) -> bytes:
    ns = f' xmlns="{S3_NAMESPACE}"' if namespace else ""
    return f"{_PROLOG}<{root}{ns}>{''.join(children)}</{root}>".encode("utf-8")


@functools.lru_cache(maxsize=4096)  # a listing page's keys share their commits' times
def format_timestamp(dt: datetime) -> str:
    """ISO 8601 in UTC with milliseconds, as S3 writes ``LastModified``."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    dt = dt.astimezone(timezone.utc)
    # "2026-12-03T13:37:14.123+00:00" -> "...14.123Z" (isoformat: a fifth of strftime's cost)
    return dt.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def encode_key(value: str, encoding_type: str | None) -> str:
    """URL-encode a key-like value when the client asked for ``encoding-type=url``.

    S3 leaves ``/`` alone and escapes everything else a URL cannot carry;
    clients decode with ``unquote_plus``, which this round-trips with.
    """
    if encoding_type != "url":
        return value
    return quote(value, safe="/-_.~")


def _owner() -> str:
    return _e("Owner", [_t("ID", OWNER_ID), _t("DisplayName", OWNER_DISPLAY_NAME)])


# Errors --------------------------------------------------------------------


def error(
    code: str,
    message: str,
    resource: str,
    request_id: str,
    extra: Mapping[str, str] | None = None,
    host_id: str = "",
) -> bytes:
    """``<Error>``: S3's error document (no namespace, as S3 sends it)."""
    children = [_t("Code", code), _t("Message", message)]
    for name, value in (extra or {}).items():
        children.append(_t(name, value))
    children += [_t("Resource", resource), _t("RequestId", request_id)]
    if host_id:
        children.append(_t("HostId", host_id))
    return _document("Error", children, namespace=False)


# Service and buckets -------------------------------------------------------


def list_all_my_buckets(
    buckets: Sequence[BucketEntry],
    *,
    prefix: str | None = None,
    continuation_token: str | None = None,
) -> bytes:
    """``continuation_token`` is the one for the next page (S3 names it so, not ``Next...``)."""
    children = [
        _owner(),
        _e(
            "Buckets",
            (
                _e(
                    "Bucket",
                    [_t("Name", b.name), _t("CreationDate", format_timestamp(b.created))],
                )
                for b in buckets
            ),
        ),
    ]
    if continuation_token is not None:
        children.append(_t("ContinuationToken", continuation_token))
    if prefix is not None:
        children.append(_t("Prefix", prefix))
    return _document("ListAllMyBucketsResult", children)


def location_constraint(region: str) -> bytes:
    """``<LocationConstraint>``; the default region is the empty element, as S3 answers."""
    if region in ("", "us-east-1"):
        return f'{_PROLOG}<LocationConstraint xmlns="{S3_NAMESPACE}"/>'.encode("utf-8")
    return _document("LocationConstraint", [_escape(region)])


def versioning_configuration(status: str) -> bytes:
    return _document("VersioningConfiguration", [_t("Status", status)] if status else [])


def access_control_policy() -> bytes:
    """A canned private ACL: the owner has FULL_CONTROL (what s3cmd ``info`` reads)."""
    grantee = (
        '<Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xsi:type="CanonicalUser">'
        f"{_t('ID', OWNER_ID)}{_t('DisplayName', OWNER_DISPLAY_NAME)}</Grantee>"
    )
    return _document(
        "AccessControlPolicy",
        [
            _owner(),
            _e("AccessControlList", [_e("Grant", [grantee, _t("Permission", "FULL_CONTROL")])]),
        ],
    )


# Listings ------------------------------------------------------------------


def _contents(page: ListPage, encoding_type: str | None, owner: bool) -> list[str]:
    # One f-string per entry: a page has up to 1,000 of them, and building each from
    # element helpers cost a quarter of a listing page's time.
    owner_xml = _owner() if owner else ""
    return [
        f"<Contents><Key>{_escape(encode_key(obj.key, encoding_type))}</Key>"
        f"<LastModified>{format_timestamp(obj.last_modified)}</LastModified>"
        f"<ETag>&quot;{_escape(normalize_etag(obj.etag))}&quot;</ETag><Size>{int(obj.size)}</Size>"
        f"{owner_xml}<StorageClass>STANDARD</StorageClass></Contents>"
        for obj in page.contents
    ]


def _common_prefixes(prefixes: Sequence[str], encoding_type: str | None) -> list[str]:
    return [
        _e("CommonPrefixes", [_t("Prefix", encode_key(p, encoding_type))]) for p in prefixes
    ]


def list_bucket_result_v1(
    bucket: str,
    page: ListPage,
    *,
    prefix: str,
    delimiter: str,
    marker: str,
    max_keys: int,
    encoding_type: str | None,
) -> bytes:
    """ListObjects (v1).  ``NextMarker`` only with a delimiter, as S3 does."""
    enc = encoding_type
    children = [
        _t("Name", bucket),
        _t("Prefix", encode_key(prefix, enc)),
        _t("Marker", encode_key(marker, enc)),
    ]
    if page.is_truncated and delimiter and page.next_marker is not None:
        children.append(_t("NextMarker", encode_key(page.next_marker, enc)))
    children.append(_t("MaxKeys", max_keys))
    if delimiter:
        children.append(_t("Delimiter", encode_key(delimiter, enc)))
    if enc:
        children.append(_t("EncodingType", enc))
    children.append(_t("IsTruncated", page.is_truncated))
    children += _contents(page, enc, owner=True)
    children += _common_prefixes(page.common_prefixes, enc)
    return _document("ListBucketResult", children)


def list_bucket_result_v2(
    bucket: str,
    page: ListPage,
    *,
    prefix: str,
    delimiter: str,
    max_keys: int,
    encoding_type: str | None,
    continuation_token: str | None,
    next_continuation_token: str | None,
    start_after: str | None,
    fetch_owner: bool,
) -> bytes:
    """ListObjectsV2: ``KeyCount`` counts keys and common prefixes, as S3 does."""
    enc = encoding_type
    children = [_t("Name", bucket), _t("Prefix", encode_key(prefix, enc))]
    if continuation_token is not None:
        children.append(_t("ContinuationToken", continuation_token))
    if next_continuation_token is not None:
        children.append(_t("NextContinuationToken", next_continuation_token))
    if start_after:
        children.append(_t("StartAfter", encode_key(start_after, enc)))
    children.append(_t("KeyCount", len(page.contents) + len(page.common_prefixes)))
    children.append(_t("MaxKeys", max_keys))
    if delimiter:
        children.append(_t("Delimiter", encode_key(delimiter, enc)))
    if enc:
        children.append(_t("EncodingType", enc))
    children.append(_t("IsTruncated", page.is_truncated))
    children += _contents(page, enc, owner=fetch_owner)
    children += _common_prefixes(page.common_prefixes, enc)
    return _document("ListBucketResult", children)


def _version(v: ObjectVersion, enc: str | None) -> str:
    common = [
        _t("Key", encode_key(v.key, enc)),
        _t("VersionId", v.version_id),
        _t("IsLatest", v.is_latest),
        _t("LastModified", format_timestamp(v.last_modified)),
    ]
    if v.is_delete_marker:
        return _e("DeleteMarker", common + [_owner()])
    return _e(
        "Version",
        common
        + [
            _t("ETag", format_etag(v.etag)),
            _t("Size", v.size),
            _owner(),
            _t("StorageClass", "STANDARD"),
        ],
    )


def list_versions_result(
    bucket: str,
    page: VersionsPage,
    *,
    prefix: str,
    delimiter: str,
    key_marker: str,
    version_id_marker: str,
    max_keys: int,
    encoding_type: str | None,
) -> bytes:
    enc = encoding_type
    children = [
        _t("Name", bucket),
        _t("Prefix", encode_key(prefix, enc)),
        _t("KeyMarker", encode_key(key_marker, enc)),
        _t("VersionIdMarker", version_id_marker),
    ]
    if page.is_truncated:
        if page.next_key_marker is not None:
            children.append(_t("NextKeyMarker", encode_key(page.next_key_marker, enc)))
        if page.next_version_id_marker is not None:
            children.append(_t("NextVersionIdMarker", page.next_version_id_marker))
    children.append(_t("MaxKeys", max_keys))
    if delimiter:
        children.append(_t("Delimiter", encode_key(delimiter, enc)))
    if enc:
        children.append(_t("EncodingType", enc))
    children.append(_t("IsTruncated", page.is_truncated))
    children += [_version(v, enc) for v in page.versions]
    children += _common_prefixes(page.common_prefixes, enc)
    return _document("ListVersionsResult", children)


# Multipart -----------------------------------------------------------------


def initiate_multipart_upload_result(bucket: str, key: str, upload_id: str) -> bytes:
    return _document(
        "InitiateMultipartUploadResult",
        [_t("Bucket", bucket), _t("Key", key), _t("UploadId", upload_id)],
    )


def _checksum_elements(checksums: Mapping[str, str]) -> list[str]:
    return [_t(f"Checksum{alg.upper()}", value) for alg, value in sorted(checksums.items())]


def checksum_type(checksums: Mapping[str, str]) -> str:
    """``COMPOSITE`` for a checksum of part checksums (``...-N``), else ``FULL_OBJECT``."""
    return "COMPOSITE" if any("-" in v for v in checksums.values()) else "FULL_OBJECT"


def complete_multipart_upload_result(
    location: str, bucket: str, key: str, etag: str, checksums: Mapping[str, str] | None = None
) -> bytes:
    return _document(
        "CompleteMultipartUploadResult",
        [
            _t("Location", location),
            _t("Bucket", bucket),
            _t("Key", key),
            _t("ETag", format_etag(etag)),
        ]
        + _checksum_elements(checksums or {})
        + ([_t("ChecksumType", checksum_type(checksums))] if checksums else []),
    )


def list_parts_result(
    bucket: str,
    key: str,
    upload_id: str,
    page: PartsPage,
    *,
    part_number_marker: int,
    max_parts: int,
    encoding_type: str | None = None,
) -> bytes:
    children = [
        _t("Bucket", bucket),
        _t("Key", encode_key(key, encoding_type)),
        _t("UploadId", upload_id),
        _e("Initiator", [_t("ID", OWNER_ID), _t("DisplayName", OWNER_DISPLAY_NAME)]),
        _owner(),
        _t("StorageClass", "STANDARD"),
        _t("PartNumberMarker", part_number_marker),
    ]
    if page.next_part_number_marker is not None:
        children.append(_t("NextPartNumberMarker", page.next_part_number_marker))
    children += [_t("MaxParts", max_parts), _t("IsTruncated", page.is_truncated)]
    if encoding_type:
        children.append(_t("EncodingType", encoding_type))
    for part in page.parts:
        children.append(
            _e(
                "Part",
                [
                    _t("PartNumber", part.part_number),
                    _t("LastModified", format_timestamp(part.last_modified)),
                    _t("ETag", format_etag(part.etag)),
                    _t("Size", part.size),
                ]
                + _checksum_elements(part.checksums),
            )
        )
    return _document("ListPartsResult", children)


def list_multipart_uploads_result(
    bucket: str,
    page: UploadsPage,
    *,
    prefix: str,
    delimiter: str,
    key_marker: str,
    upload_id_marker: str,
    max_uploads: int,
    encoding_type: str | None,
) -> bytes:
    enc = encoding_type
    children = [
        _t("Bucket", bucket),
        _t("KeyMarker", encode_key(key_marker, enc)),
        _t("UploadIdMarker", upload_id_marker),
    ]
    if page.is_truncated:
        if page.next_key_marker is not None:
            children.append(_t("NextKeyMarker", encode_key(page.next_key_marker, enc)))
        if page.next_upload_id_marker is not None:
            children.append(_t("NextUploadIdMarker", page.next_upload_id_marker))
    if prefix:
        children.append(_t("Prefix", encode_key(prefix, enc)))
    if delimiter:
        children.append(_t("Delimiter", encode_key(delimiter, enc)))
    children.append(_t("MaxUploads", max_uploads))
    if enc:
        children.append(_t("EncodingType", enc))
    children.append(_t("IsTruncated", page.is_truncated))
    for up in page.uploads:
        children.append(
            _e(
                "Upload",
                [
                    _t("Key", encode_key(up.key, enc)),
                    _t("UploadId", up.upload_id),
                    _e("Initiator", [_t("ID", OWNER_ID), _t("DisplayName", OWNER_DISPLAY_NAME)]),
                    _owner(),
                    _t("StorageClass", "STANDARD"),
                    _t("Initiated", format_timestamp(up.initiated)),
                ],
            )
        )
    children += _common_prefixes(page.common_prefixes, enc)
    return _document("ListMultipartUploadsResult", children)


# Copies and deletes --------------------------------------------------------


def copy_object_result(
    etag: str, last_modified: datetime, checksums: Mapping[str, str] | None = None
) -> bytes:
    return _document(
        "CopyObjectResult",
        [_t("LastModified", format_timestamp(last_modified)), _t("ETag", format_etag(etag))]
        + _checksum_elements(checksums or {}),
    )


def copy_part_result(
    etag: str, last_modified: datetime, checksums: Mapping[str, str] | None = None
) -> bytes:
    return _document(
        "CopyPartResult",
        [_t("LastModified", format_timestamp(last_modified)), _t("ETag", format_etag(etag))]
        + _checksum_elements(checksums or {}),
    )


def delete_result(
    deleted: Sequence[tuple[str, str | None] | tuple[str, str | None, bool]],
    failed: Sequence[tuple[str, str | None, str, str]],
    *,
    encoding_type: str | None = None,
) -> bytes:
    """DeleteObjects: ``deleted`` is (key, version[, delete marker]), ``failed`` is
    (key, version, code, message).

    In quiet mode the caller passes no ``deleted`` entries.
    """
    children = []
    for entry in deleted:
        key, version = entry[0], entry[1]
        inner = [_t("Key", encode_key(key, encoding_type))]
        if version:
            inner.append(_t("VersionId", version))
        if len(entry) > 2 and entry[2]:
            inner.append(_t("DeleteMarker", True))
            if version:
                inner.append(_t("DeleteMarkerVersionId", version))
        children.append(_e("Deleted", inner))
    for key, version, code, message in failed:
        inner = [_t("Key", encode_key(key, encoding_type))]
        if version:
            inner.append(_t("VersionId", version))
        inner += [_t("Code", code), _t("Message", message)]
        children.append(_e("Error", inner))
    return _document("DeleteResult", children)
