"""Verification of aws-chunked chunk and trailer signatures (SigV4 streaming).

Each chunk of a ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD`` body is signed with
the request's signing key, chaining from the previous signature (the first
from the request's own, "seed", signature), so chunks can be neither
altered, dropped nor reordered.
"""

from __future__ import annotations

import hashlib
import hmac

from pachs3gw.s3 import errors

_EMPTY_SHA256_HEX = hashlib.sha256(b"").hexdigest()


class ChunkSignatureVerifier:
    """Checks the chain of chunk signatures of one streaming request.

    Built by :func:`pachs3gw.s3.signing.verify`; driven by
    :class:`pachs3gw.s3.chunked.AwsChunkedDecoder`.  Stateful (the chain):
    one per request, used by one thread at a time.
    """

    def __init__(
        self,
        signing_key: bytes,
        amz_date: str,
        scope: str,
        seed_signature: str,
        *,
        expects_trailer: bool = False,
    ) -> None:
        self._key = signing_key
        self._amz_date = amz_date
        self._scope = scope
        self._previous = seed_signature
        #: True for ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER``: the body
        #: must end with a signed trailer section.
        self.expects_trailer = expects_trailer

    def _check(self, string_to_sign: str, signature: str) -> None:
        expected = hmac.new(self._key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature.lower()):
            raise errors.SignatureDoesNotMatch()
        self._previous = expected

    def verify_chunk(self, chunk_sha256: bytes, signature: str) -> None:
        """Check the signature of the next chunk, given the SHA-256 of its data."""
        self._check(
            "\n".join(
                [
                    "AWS4-HMAC-SHA256-PAYLOAD",
                    self._amz_date,
                    self._scope,
                    self._previous,
                    _EMPTY_SHA256_HEX,
                    chunk_sha256.hex(),
                ]
            ),
            signature,
        )

    def verify_trailer(self, trailer_text: bytes, signature: str) -> None:
        """Check the trailer signature; ``trailer_text`` is ``name:value\\n`` per trailer."""
        self._check(
            "\n".join(
                [
                    "AWS4-HMAC-SHA256-TRAILER",
                    self._amz_date,
                    self._scope,
                    self._previous,
                    hashlib.sha256(trailer_text).hexdigest(),
                ]
            ),
            signature,
        )

    def sign_chunk(self, chunk_sha256: bytes) -> str:
        """The signature the next chunk should carry (for tests and test clients); does not advance."""
        sts = "\n".join(
            [
                "AWS4-HMAC-SHA256-PAYLOAD",
                self._amz_date,
                self._scope,
                self._previous,
                _EMPTY_SHA256_HEX,
                chunk_sha256.hex(),
            ]
        )
        return hmac.new(self._key, sts.encode("utf-8"), hashlib.sha256).hexdigest()
