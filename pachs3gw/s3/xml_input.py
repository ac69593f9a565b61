"""Safe parsing of the XML request bodies S3 accepts.

Request bodies come from the network, so they are parsed with defusedxml
(no DTDs, no entities, no external references: XXE and entity bombs are
refused) after a size check.  Any problem is MalformedXML, S3's answer to
bodies it cannot read.  Both the S3 namespace
(``http://s3.amazonaws.com/doc/2006-03-01/``, what the SDKs send) and no
namespace (what hand-written requests and s3cmd send) are accepted.
Pure functions: safe from any thread.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import attrs
import defusedxml
import defusedxml.ElementTree as DET

from pachs3gw.s3 import errors
from pachs3gw.s3.interfaces import CompletedPart
from pachs3gw.s3.limits import MAX_DELETE_KEYS, MAX_PART_NUMBER, MAX_XML_BODY
from pachs3gw.s3.xml_output import S3_NAMESPACE

__all__ = [
    "DeleteRequest",
    "parse_complete_multipart",
    "parse_create_bucket",
    "parse_delete",
    "parse_versioning",
]


_CHECKSUM_ELEMENTS = {
    "ChecksumCRC32": "CRC32",
    "ChecksumCRC32C": "CRC32C",
    "ChecksumCRC64NVME": "CRC64NVME",
    "ChecksumSHA1": "SHA1",
    "ChecksumSHA256": "SHA256",
}


@attrs.frozen
class DeleteRequest:
    """A DeleteObjects request: the keys (with optional version IDs) and Quiet mode."""

    quiet: bool
    objects: list[tuple[str, str | None]]


def _parse(body: bytes, root_name: str) -> ET.Element:
    if len(body) > MAX_XML_BODY:
        raise errors.MalformedXML()
    try:
        root: ET.Element = DET.fromstring(
            body, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except (ET.ParseError, defusedxml.DefusedXmlException, ValueError, LookupError):
        # LookupError: the declaration names an encoding Python doesn't
        # know (``EBCDIC``) or one that isn't text (``rot13``); ValueError
        # covers UnicodeError and expat's refusal of multi-byte codecs.
        raise errors.MalformedXML() from None
    if _local(root) != root_name:
        raise errors.MalformedXML()
    return root


def _local(el: ET.Element) -> str | None:
    """The tag without the S3 namespace; ``None`` for any other namespace."""
    tag: object = el.tag  # a comment's or processing instruction's tag is a function
    if not isinstance(tag, str):
        return None
    if tag.startswith("{"):
        ns, _, name = tag[1:].partition("}")
        return name if ns == S3_NAMESPACE else None
    return tag


def _children(el: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in el if _local(c) == name]


def _one_text(el: ET.Element, name: str, *, required: bool) -> str | None:
    found = _children(el, name)
    if len(found) > 1:
        raise errors.MalformedXML()
    if not found:
        if required:
            raise errors.MalformedXML()
        return None
    if len(found[0]):
        raise errors.MalformedXML()
    return found[0].text or ""


def parse_complete_multipart(body: bytes) -> list[CompletedPart]:
    """Parse a ``<CompleteMultipartUpload>`` body into its parts, in document order.

    Order, duplicates and whether the parts exist are the gateway's to judge
    (InvalidPartOrder / InvalidPart); here only the shape is checked: at
    least one part, each with an integer PartNumber in 1..10000 and an ETag.
    """
    root = _parse(body, "CompleteMultipartUpload")
    parts: list[CompletedPart] = []
    for el in _children(root, "Part"):
        number_text = _one_text(el, "PartNumber", required=True)
        etag_text = _one_text(el, "ETag", required=True)
        assert number_text is not None and etag_text is not None
        number_text = number_text.strip()
        if not number_text.isascii() or not number_text.isdigit():
            raise errors.MalformedXML()
        number = int(number_text)
        if not 1 <= number <= MAX_PART_NUMBER:
            raise errors.InvalidArgument(
                "Part number must be an integer between 1 and 10000, inclusive",
                extra={"ArgumentName": "partNumber", "ArgumentValue": number_text},
            )
        etag = _normalize_etag(etag_text)
        if not etag:
            raise errors.MalformedXML()
        checksums: dict[str, str] = {}
        for element, alg in _CHECKSUM_ELEMENTS.items():
            value = _one_text(el, element, required=False)
            if value is not None and value.strip():
                checksums[alg] = value.strip()
        parts.append(CompletedPart(part_number=number, etag=etag, checksums=checksums))
    if not parts:
        raise errors.MalformedXML()
    return parts


def _normalize_etag(s: str) -> str:
    # Local copy of conditions.normalize_etag to keep this module standalone.
    s = s.strip()
    if s[:2] in ("W/", "w/"):
        s = s[2:].lstrip()
    if len(s) >= 2 and s[0] == '"' and s[-1] == '"':
        s = s[1:-1]
    # Some clients send &quot; entities, which the parser already turned
    # into quotes; nothing else to undo.
    return s


def parse_delete(body: bytes) -> DeleteRequest:
    """Parse a DeleteObjects ``<Delete>`` body.

    More than 1,000 objects, none, or an ``<Object>`` without ``<Key>`` is
    MalformedXML, as S3 answers.  Keys are returned verbatim (whitespace is
    significant in keys).
    """
    root = _parse(body, "Delete")
    quiet_text = _one_text(root, "Quiet", required=False)
    quiet = False
    if quiet_text is not None:
        q = quiet_text.strip().lower()
        if q not in ("true", "false"):
            raise errors.MalformedXML()
        quiet = q == "true"
    objects: list[tuple[str, str | None]] = []
    elements = _children(root, "Object")
    if not elements or len(elements) > MAX_DELETE_KEYS:
        raise errors.MalformedXML()
    for el in elements:
        key = _one_text(el, "Key", required=True)
        assert key is not None
        if key == "":
            raise errors.MalformedXML()
        version = _one_text(el, "VersionId", required=False)
        objects.append((key, version.strip() if version is not None and version.strip() else None))
    return DeleteRequest(quiet=quiet, objects=objects)


def parse_create_bucket(body: bytes) -> str | None:
    """Return the ``LocationConstraint`` of a CreateBucket body; ``None`` if there is none.

    An empty (or all-whitespace) body is normal: most clients send none.
    """
    if not body.strip():
        return None
    root = _parse(body, "CreateBucketConfiguration")
    location = _one_text(root, "LocationConstraint", required=False)
    if location is None or not location.strip():
        return None
    return location.strip()


def parse_versioning(body: bytes) -> tuple[str | None, str | None]:
    """``(Status, MfaDelete)`` of a PutBucketVersioning body (each ``None`` if absent).

    Values are checked against S3's enumerations: ``Enabled``/``Suspended``
    and ``Enabled``/``Disabled``; anything else is MalformedXML, as S3 answers.
    """
    root = _parse(body, "VersioningConfiguration")
    status = _one_text(root, "Status", required=False)
    mfa = _one_text(root, "MfaDelete", required=False)
    if status is not None and status.strip() not in ("Enabled", "Suspended"):
        raise errors.MalformedXML()
    if mfa is not None and mfa.strip() not in ("Enabled", "Disabled"):
        raise errors.MalformedXML()
    return (
        status.strip() if status is not None else None,
        mfa.strip() if mfa is not None else None,
    )
