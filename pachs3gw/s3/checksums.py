"""Body integrity: Content-MD5, ``x-amz-content-sha256`` and ``x-amz-checksum-*``, on the stream.

A body is verified while it streams into PFS, in the worker thread that
feeds the upload, and the commit is finished only if :meth:`BodyVerifier.finish`
returns: that is how a corrupt upload leaves nothing behind without the
gateway ever holding the body.  Header syntax is checked up front in
:meth:`BodyVerifier.from_headers`, before any byte is accepted, so a bad
header costs the client nothing but a 400.

A :class:`BodyVerifier` belongs to one request and is used by one thread at
a time (the worker thread that streams that request's body).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import crc32c as _crc32c
from awscrt import checksums as _awscrt_checksums

from pachs3gw.s3 import errors

__all__ = [
    "ALGORITHMS",
    "BodyVerifier",
    "SPECIAL_PAYLOAD_HASHES",
    "checksum_of",
    "composite_checksum",
    "multipart_etag",
]

#: ``x-amz-content-sha256`` values that say "the payload hash is not in this
#: header" (the body is unsigned, or signed chunk by chunk).
SPECIAL_PAYLOAD_HASHES = frozenset(
    {
        "UNSIGNED-PAYLOAD",
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
        "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD",
        "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER",
    }
)

_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


class _Hasher(Protocol):
    def update(self, data: bytes) -> None: ...

    def digest(self) -> bytes: ...


class _Crc:
    """A running CRC with the hashlib ``update``/``digest`` shape, digest big-endian as S3 encodes it."""

    def __init__(self, fn: Callable[[bytes, int], int], width: int) -> None:
        self._fn = fn
        self._width = width
        self._value = 0

    def update(self, data: bytes) -> None:
        self._value = self._fn(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(self._width, "big")


def _crc32(data: bytes, value: int) -> int:
    return zlib.crc32(data, value)


def _crc32c_fn(data: bytes, value: int) -> int:
    return int(_crc32c.crc32c(data, value))


def _crc64nvme(data: bytes, value: int) -> int:
    return int(_awscrt_checksums.crc64nvme(data, value))


#: Algorithm name (as in ``x-amz-checksum-<name>`` upper-cased) → (factory, digest length).
ALGORITHMS: dict[str, tuple[Callable[[], _Hasher], int]] = {
    "CRC32": (lambda: _Crc(_crc32, 4), 4),
    "CRC32C": (lambda: _Crc(_crc32c_fn, 4), 4),
    "CRC64NVME": (lambda: _Crc(_crc64nvme, 8), 8),
    "SHA1": (hashlib.sha1, 20),
    "SHA256": (hashlib.sha256, 32),
}

_CHECKSUM_PREFIX = "x-amz-checksum-"


def _b64decode(value: str) -> bytes | None:
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None


def _valid_checksum(alg: str, value: str) -> bool:
    raw = _b64decode(value)
    return raw is not None and len(raw) == ALGORITHMS[alg][1]


def checksum_of(alg: str, data: bytes) -> str:
    """The base64 ``x-amz-checksum-<alg>`` value of ``data`` (tests and small bodies)."""
    h = ALGORITHMS[alg.upper()][0]()
    h.update(data)
    return base64.b64encode(h.digest()).decode("ascii")


def composite_checksum(algorithm: str, part_checksums: Sequence[str]) -> str:
    """S3's checksum of a multipart object: ``base64(H(concat(binary part checksums)))-N``.

    What CompleteMultipartUpload answers and HEAD/GET return with
    ``ChecksumMode=ENABLED`` for an upload created with a checksum algorithm.
    """
    h = ALGORITHMS[algorithm.upper()][0]()
    for value in part_checksums:
        h.update(base64.b64decode(value))
    return f"{base64.b64encode(h.digest()).decode('ascii')}-{len(part_checksums)}"


def multipart_etag(part_md5_hexes: Sequence[str]) -> str:
    """The ETag S3 gives a completed multipart object: ``md5(concat(binary part md5s))-N``, unquoted.

    s3cmd and ``aws s3 sync`` recompute this from the part size to decide
    whether a file changed, so it must be exactly S3's.
    """
    md5 = hashlib.md5()
    for part in part_md5_hexes:
        md5.update(bytes.fromhex(part.strip().strip('"')))
    return f"{md5.hexdigest()}-{len(part_md5_hexes)}"


class BodyVerifier:
    """Hashes a request body as it streams and checks it against what the client declared.

    Build it with :meth:`from_headers`; call :meth:`update` with the decoded
    body bytes (after aws-chunked decoding), then :meth:`finish` with the
    trailers, if any.  MD5 is always computed (it is the ETag); the other
    digests only when the request asks for them.
    """

    def __init__(
        self,
        *,
        content_md5: bytes | None = None,
        content_sha256: bytes | None = None,
        expected: Mapping[str, str] | None = None,
        trailer_algorithms: Sequence[str] = (),
        compute: Sequence[str] = (),
    ) -> None:
        self._md5 = hashlib.md5()
        self._content_md5 = content_md5
        self._content_sha256 = content_sha256
        self._sha256_hasher = hashlib.sha256() if content_sha256 is not None else None
        #: Algorithm → base64 value declared in a header.
        self._expected: dict[str, str] = dict(expected or {})
        #: Algorithms whose value arrives as a trailer.
        self._trailer_algorithms = tuple(trailer_algorithms)
        algs = list(self._expected) + list(self._trailer_algorithms) + [a.upper() for a in compute]
        self._hashers: dict[str, _Hasher] = {}
        for alg in algs:
            if alg not in self._hashers:
                self._hashers[alg] = ALGORITHMS[alg][0]()
        self._size = 0
        self._checksums: dict[str, str] = {}
        self._finished = False

    @classmethod
    def from_headers(
        cls,
        headers: Mapping[str, str],
        *,
        trailer_names: Sequence[str] = (),
        compute: Sequence[str] = (),
    ) -> BodyVerifier:
        """Validate the integrity headers of a request and prepare to check its body.

        :param headers: the request headers, lowercase names.
        :param trailer_names: the names announced in ``x-amz-trailer`` (the
            header itself is also read, so passing them is optional).
        :param compute: extra algorithms to compute without verifying (e.g.
            the ``x-amz-checksum-algorithm`` of the multipart upload).

        Raises InvalidDigest (bad Content-MD5), InvalidArgument (bad
        ``x-amz-content-sha256``) or InvalidRequest (bad or conflicting
        ``x-amz-checksum-*`` / ``x-amz-sdk-checksum-algorithm`` /
        ``x-amz-trailer``), with S3's messages.
        """
        content_md5: bytes | None = None
        md5_header = headers.get("content-md5")
        if md5_header is not None:
            content_md5 = _b64decode(md5_header)
            if content_md5 is None or len(content_md5) != 16:
                raise errors.InvalidDigest()

        content_sha256: bytes | None = None
        sha_header = headers.get("x-amz-content-sha256")
        if sha_header is not None:
            sha_header = sha_header.strip()
            if _HEX_SHA256.fullmatch(sha_header):
                content_sha256 = bytes.fromhex(sha_header)
            elif sha_header not in SPECIAL_PAYLOAD_HASHES:
                raise errors.InvalidArgument(
                    "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, "
                    "STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, "
                    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, "
                    "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD, "
                    "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER or a valid sha256 value.",
                    extra={"ArgumentName": "x-amz-content-sha256", "ArgumentValue": sha_header},
                )

        expected: dict[str, str] = {}
        for name, value in headers.items():
            if not name.startswith(_CHECKSUM_PREFIX):
                continue
            alg = name[len(_CHECKSUM_PREFIX) :].upper()
            if alg in ("ALGORITHM", "TYPE", "MODE"):
                # x-amz-checksum-algorithm (CreateMultipartUpload),
                # x-amz-checksum-type, x-amz-checksum-mode: not values.
                continue
            if alg not in ALGORITHMS:
                raise errors.InvalidRequest(f"Value for {name} header is invalid.")
            if not _valid_checksum(alg, value):
                raise errors.InvalidRequest(f"Value for {_CHECKSUM_PREFIX}{alg.lower()} header is invalid.")
            expected[alg] = value.strip()
        if len(expected) > 1:
            raise errors.InvalidRequest(
                "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."
            )

        names = [n.strip().lower() for n in trailer_names if n.strip()]
        announced = headers.get("x-amz-trailer")
        if announced:
            names += [n.strip().lower() for n in announced.split(",") if n.strip()]
        trailer_algs: list[str] = []
        for name in dict.fromkeys(names):
            alg = name[len(_CHECKSUM_PREFIX) :].upper() if name.startswith(_CHECKSUM_PREFIX) else ""
            if alg not in ALGORITHMS:
                raise errors.InvalidRequest(
                    "The value specified in the x-amz-trailer header is not supported"
                )
            trailer_algs.append(alg)
        if len(set(trailer_algs) | set(expected)) > 1:
            raise errors.InvalidRequest(
                "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."
            )

        sdk_alg = headers.get("x-amz-sdk-checksum-algorithm")
        if sdk_alg is not None:
            sdk = sdk_alg.strip().upper()
            if sdk not in ALGORITHMS:
                raise errors.InvalidRequest(
                    "Checksum algorithm provided is unsupported. Please try again with any of "
                    "the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]"
                )
            declared = set(expected) | set(trailer_algs)
            if not declared:
                raise errors.InvalidRequest(
                    "x-amz-sdk-checksum-algorithm specified, but no corresponding "
                    "x-amz-checksum-* or x-amz-trailer headers were found."
                )
            if sdk not in declared:
                raise errors.InvalidRequest(
                    "Value for x-amz-sdk-checksum-algorithm header is invalid."
                )

        for alg in compute:
            if alg.upper() not in ALGORITHMS:
                raise errors.InvalidRequest(
                    "Checksum algorithm provided is unsupported. Please try again with any of "
                    "the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]"
                )

        return cls(
            content_md5=content_md5,
            content_sha256=content_sha256,
            expected=expected,
            trailer_algorithms=trailer_algs,
            compute=compute,
        )

    def update(self, data: bytes) -> None:
        """Account for the next piece of the (decoded) body.  Worker thread."""
        if not data:
            return
        self._size += len(data)
        self._md5.update(data)
        if self._sha256_hasher is not None:
            self._sha256_hasher.update(data)
        for h in self._hashers.values():
            h.update(data)

    def finish(self, trailers: Mapping[str, str] | None = None) -> None:
        """Compare every declared digest with the computed one; raise on the first mismatch.

        ``trailers`` are the aws-chunked trailers (lowercase names).  A
        trailer announced in ``x-amz-trailer`` but missing is
        MalformedTrailerError.  Worker thread.
        """
        trailers = trailers or {}
        if self._content_md5 is not None and self._md5.digest() != self._content_md5:
            raise errors.BadDigest()
        if self._sha256_hasher is not None and self._sha256_hasher.digest() != self._content_sha256:
            raise errors.XAmzContentSHA256Mismatch(
                extra={
                    "ClientComputedContentSHA256": (self._content_sha256 or b"").hex(),
                    "S3ComputedContentSHA256": self._sha256_hasher.hexdigest(),
                }
            )
        computed = {
            alg: base64.b64encode(h.digest()).decode("ascii") for alg, h in self._hashers.items()
        }
        for alg in self._trailer_algorithms:
            value = trailers.get(_CHECKSUM_PREFIX + alg.lower())
            if value is None:
                raise errors.MalformedTrailerError()
            if not _valid_checksum(alg, value):
                raise errors.InvalidRequest(
                    f"Value for {_CHECKSUM_PREFIX}{alg.lower()} trailing header is invalid."
                )
            self._check(alg, value, computed[alg])
        for alg, value in self._expected.items():
            self._check(alg, value, computed[alg])
        self._checksums = computed
        self._finished = True

    @staticmethod
    def _check(alg: str, declared: str, computed: str) -> None:
        if _b64decode(declared) != _b64decode(computed):
            raise errors.BadDigest(f"The {alg} you specified did not match the calculated checksum.")

    @property
    def md5_hex(self) -> str:
        """Hex MD5 of the bytes seen so far: the object's (or part's) ETag once finished."""
        return self._md5.hexdigest()

    @property
    def size(self) -> int:
        """Number of body bytes seen so far."""
        return self._size

    @property
    def checksums(self) -> dict[str, str]:
        """Algorithm → base64 value of every checksum computed (verified, or asked for via ``compute``).

        Empty until :meth:`finish` has succeeded: only verified values are
        worth storing.
        """
        return dict(self._checksums)
