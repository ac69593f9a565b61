"""GetObjectAttributes: an object's ETag, size, checksum and parts without its body.

Backup tools and the SDKs' transfer managers ask for it to decide whether
a local copy matches, and to fetch a multipart object part by part. It is
a HEAD in disguise: one ``head_object`` and an XML rendering of what the
HEAD already knows (part sizes and checksums are in the object's metadata).

Threads: reactor thread only.
"""

from __future__ import annotations

from collections.abc import Mapping

from pachs3gw.s3 import errors
from pachs3gw.s3._base import Responder
from pachs3gw.s3._call import _Call
from pachs3gw.s3._headers import _http_date
from pachs3gw.s3.interfaces import ObjectInfo
from pachs3gw.s3.limits import MAX_KEYS
from pachs3gw.s3.xml_output import _document, _e, _t, checksum_type

#: The attributes S3 defines, as ``x-amz-object-attributes`` spells them.
ATTRIBUTES = ("ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize")


def _checksums(checksums: Mapping[str, str]) -> list[str]:
    return [_t(f"Checksum{alg.upper()}", value) for alg, value in sorted(checksums.items())]


def _int_header(call: _Call, name: str, default: int) -> int:
    value = call.headers.get(name, "").strip()
    if not value:
        return default
    if not value.isascii() or not value.isdigit():
        raise errors.InvalidArgument(
            f"{name} must be a non-negative integer",
            extra={"ArgumentName": name, "ArgumentValue": value},
        )
    return int(value)


def object_attributes_result(
    info: ObjectInfo, wanted: set[str], *, max_parts: int, part_number_marker: int
) -> bytes:
    children: list[str] = []
    if "ETag" in wanted:
        children.append(_t("ETag", info.etag))
    if "Checksum" in wanted and info.checksums:
        children.append(
            _e(
                "Checksum",
                _checksums(info.checksums) + [_t("ChecksumType", checksum_type(info.checksums))],
            )
        )
    if "ObjectParts" in wanted and info.part_sizes:
        numbers = [n for n in range(1, len(info.part_sizes) + 1) if n > part_number_marker]
        page = numbers[:max_parts]
        truncated = len(numbers) > len(page)
        parts = []
        for n in page:
            part = [_t("PartNumber", n), _t("Size", info.part_sizes[n - 1])]
            if n - 1 < len(info.part_checksums):
                part = _checksums(info.part_checksums[n - 1]) + part
            parts.append(_e("Part", part))
        inner = [
            _t("IsTruncated", truncated),
            _t("MaxParts", max_parts),
            _t("PartNumberMarker", part_number_marker),
        ]
        if truncated and page:
            inner.append(_t("NextPartNumberMarker", page[-1]))
        inner += parts
        inner.append(_t("PartsCount", len(info.part_sizes)))
        children.append(_e("ObjectParts", inner))
    if "StorageClass" in wanted:
        children.append(_t("StorageClass", "STANDARD"))
    if "ObjectSize" in wanted:
        children.append(_t("ObjectSize", info.size))
    return _document("GetObjectAttributesResponse", children)


class AttributesHandlers:
    """The handler of ``GET /{bucket}/{key}?attributes`` (reactor thread only)."""

    def __init__(self, reply: Responder) -> None:
        self._reply = reply

    async def get_object_attributes(self, call: _Call) -> None:
        raw = call.headers.get("x-amz-object-attributes", "")
        names = {n.strip().lower(): n.strip() for n in raw.split(",") if n.strip()}
        if not names:
            raise errors.InvalidArgument(
                "The x-amz-object-attributes header specifying the attributes to be retrieved "
                "is either missing or empty",
                extra={"ArgumentName": "x-amz-object-attributes"},
            )
        known = {a.lower(): a for a in ATTRIBUTES}
        unknown = sorted(n for n in names if n not in known)
        if unknown:
            raise errors.InvalidArgument(
                "Invalid attribute name specified.",
                extra={"ArgumentName": "x-amz-object-attributes", "ArgumentValue": names[unknown[0]]},
            )
        max_parts = min(_int_header(call, "x-amz-max-parts", MAX_KEYS), MAX_KEYS)
        marker = _int_header(call, "x-amz-part-number-marker", 0)
        info = await call.backend.head_object(call.bucket, call.key, call.query.get("versionId"))
        headers = {b"last-modified": _http_date(info.last_modified)}
        if info.version_id:
            headers[b"x-amz-version-id"] = info.version_id.encode("latin-1")
        body = object_attributes_result(
            info, {known[n] for n in names}, max_parts=max_parts, part_number_marker=marker
        )
        self._reply.send(call, body, headers=headers)
