"""Every limit S3 and this gateway put on a request, in one place.

S3's own values where S3 has one (5 GiB for a single PUT or part, 1,024
bytes of key, 10,000 parts, 1,000 keys a page, 5 MiB parts); where S3
documents none (timeouts), values that let a slow link through but not a
connection that sends nothing.  :class:`Limits` is what an operator tunes
(``--header-timeout``, ``--body-timeout``, ``--body-min-bytes``); the Site
carries one and every request and connection reads it there.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from pachs3gw.s3 import errors

__all__ = [
    "Limits",
    "MAX_BUCKETS",
    "MAX_DELETE_KEYS",
    "MAX_KEY_BYTES",
    "MAX_KEYS",
    "MAX_PART_NUMBER",
    "MAX_SINGLE_UPLOAD",
    "MAX_XML_BODY",
    "MIN_PART_SIZE",
    "check_upload_size",
]

#: S3's largest single PUT and largest part: 5 GiB.
MAX_SINGLE_UPLOAD = 5 * 1024**3
#: S3's smallest part but the last of a multipart upload.
MIN_PART_SIZE = 5 * 1024 * 1024
#: S3's longest key, in UTF-8 bytes.
MAX_KEY_BYTES = 1024
#: S3's highest part number (and most parts of an upload).
MAX_PART_NUMBER = 10000
#: S3's largest (and default) page of a listing: keys, versions, parts, uploads.
MAX_KEYS = 1000
#: S3's largest (and, with ``max-buckets``, default) ListBuckets page.
MAX_BUCKETS = 10000
#: Largest XML request body read: a CompleteMultipartUpload of 10,000 parts
#: with a checksum each is ~2.5 MB, a DeleteObjects of 1,000 keys of 1,024
#: bytes ~1.1 MB (more if the keys need escaping); beyond, MalformedXML.
MAX_XML_BODY = 8 * 1024 * 1024
#: S3's limit on keys per DeleteObjects request.
MAX_DELETE_KEYS = 1000


@attrs.frozen
class Limits:
    """Request limits enforced before and while a request is read."""

    #: Request line plus headers, bytes (S3 allows 8 KiB of headers; a key
    #: of 1,024 bytes percent-encoded is ~3 KiB of request line).
    max_header_bytes: int = 16 * 1024
    #: Seconds from a request's first byte to the end of its headers.
    header_timeout: float = 60.0
    #: A body (while the backend reads it and we don't hold the client back)
    #: must bring at least ``body_min_bytes`` every ``body_timeout`` seconds:
    #: a minimum rate over a window, not a deadline, so a large upload on a
    #: slow link goes through and a stalled one is cut off.
    body_timeout: float = 60.0
    body_min_bytes: int = 1024


def check_upload_size(headers: Mapping[str, str]) -> None:
    """EntityTooLarge at once for a PUT or part that declares more than 5 GiB.

    Checked before the body is read, so a client that waits for
    ``100 Continue`` never sends it.
    """
    for name in ("x-amz-decoded-content-length", "content-length"):
        value = headers.get(name, "").strip()
        if value.isascii() and value.isdigit() and int(value) > MAX_SINGLE_UPLOAD:
            raise errors.EntityTooLarge(
                extra={"ProposedSize": value, "MaxSizeAllowed": str(MAX_SINGLE_UPLOAD)}
            )
