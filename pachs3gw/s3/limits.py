"""Every limit the HTTP layer puts on a request, in one place.

S3's own values where S3 has one (5 GiB for a single PUT or part); where S3
documents none (timeouts), values that let a slow link through but not a
connection that sends nothing.  :class:`Limits` is what an operator tunes
(``--header-timeout``, ``--body-timeout``, ``--body-min-bytes``); the Site
carries one and every request and connection reads it there.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from pachs3gw.s3 import errors

__all__ = ["Limits", "MAX_SINGLE_UPLOAD", "check_upload_size"]

#: S3's largest single PUT and largest part: 5 GiB.
MAX_SINGLE_UPLOAD = 5 * 1024**3


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
