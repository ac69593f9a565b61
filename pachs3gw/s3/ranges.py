"""The ``Range`` and ``x-amz-copy-source-range`` rules of S3.

S3 is lenient with ``Range``: a header it cannot parse, or one asking for
several ranges, is ignored and the whole object is served (200), while a
well-formed range that starts past the end is an error (416).  It is strict
with ``x-amz-copy-source-range``: only ``bytes=first-last`` is accepted.
Both functions are pure so they can be called from any thread.
"""

from __future__ import annotations

import re

from pachs3gw.s3 import errors

__all__ = ["parse_range", "parse_copy_source_range"]

# RFC 7233 byte-range-spec / suffix-byte-range-spec, one range only.  The
# unit is case-insensitive; whitespace around the numbers is tolerated as
# S3 does.
_RANGE = re.compile(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", re.IGNORECASE | re.ASCII)
_COPY_RANGE = re.compile(r"bytes=(\d+)-(\d+)", re.ASCII)


def _unsatisfiable(header: str, size: int) -> errors.S3Error:
    return errors.InvalidRange(
        headers={"Content-Range": f"bytes */{size}"},
        extra={"RangeRequested": header, "ActualObjectSize": str(size)},
    )


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Return the ``(start, end_inclusive)`` of a ``Range`` header for an object of ``size`` bytes.

    ``None`` means "serve the whole object with 200": no header, a header S3
    would ignore (bad syntax, several ranges, ``a-b`` with ``b < a``).  An
    ``end`` past the object is clamped; a suffix longer than the object
    selects all of it.  A range starting at or past the end, ``bytes=-0``,
    and any range on an empty object raise :class:`errors.InvalidRange`
    (416) carrying the ``Content-Range: bytes */size`` header.
    """
    if header is None:
        return None
    m = _RANGE.fullmatch(header)
    if m is None:
        return None
    first, last = m.group(1), m.group(2)
    if not first and not last:
        return None
    if not first:
        # Suffix range: the last N bytes.
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise _unsatisfiable(header, size)
        return (max(0, size - suffix), size - 1)
    start = int(first)
    if last:
        end = int(last)
        if end < start:
            return None
    else:
        end = size - 1
    if start >= size:
        raise _unsatisfiable(header, size)
    return (start, min(end, size - 1))


def parse_copy_source_range(header: str, size: int) -> tuple[int, int]:
    """Return the ``(first, last_inclusive)`` of an ``x-amz-copy-source-range`` for a source of ``size`` bytes.

    UploadPartCopy copies exactly the bytes asked for, so nothing is clamped
    or ignored: bad syntax or ``last < first`` is InvalidArgument, a range
    reaching past the source is InvalidRange, as S3 answers.
    """
    m = _COPY_RANGE.fullmatch(header.strip())
    if m is None or int(m.group(2)) < int(m.group(1)):
        raise errors.InvalidArgument(
            "The x-amz-copy-source-range value must be of the form bytes=first-last "
            "where first and last are the zero-based offsets of the first and last "
            "bytes to copy",
            extra={"ArgumentName": "x-amz-copy-source-range", "ArgumentValue": header},
        )
    first, last = int(m.group(1)), int(m.group(2))
    if last >= size:
        raise errors.InvalidRange(
            f"Range specified is not valid for source object of size: {size}",
            extra={"RangeRequested": header, "ActualObjectSize": str(size)},
        )
    return (first, last)
