"""Incremental decoder for ``Content-Encoding: aws-chunked`` request bodies.

SDKs wrap PUT and UploadPart bodies in S3's own chunked framing: signed per
chunk (``STREAMING-AWS4-HMAC-SHA256-PAYLOAD``, what mc/minio-go send) or
unsigned with a checksum trailer (``STREAMING-UNSIGNED-PAYLOAD-TRAILER``,
what boto3 sends over HTTPS)::

    hex-size[;chunk-signature=sig]\\r\\n <size bytes> \\r\\n
    ...
    0[;chunk-signature=sig]\\r\\n
    [name:value\\r\\n ...]            trailers
    [x-amz-trailer-signature:sig\\r\\n]
    \\r\\n

The decoder is fed whatever the transport delivers, split anywhere, and
passes payload through as it arrives, so memory stays bounded by the size
of the pieces it is fed, not by the chunk size.  Chunk signatures are
checked on a running SHA-256 when each chunk ends: the bytes of a forged
chunk have then already been handed out, so the caller must not finish
the PFS commit before :meth:`AwsChunkedDecoder.finish` returns (it must do
so anyway: the body's checksums are only known at the end).

One decoder per request; used by one thread at a time.
"""

from __future__ import annotations

import enum
import hashlib
import re
from typing import TYPE_CHECKING

from pachs3gw.s3 import errors

if TYPE_CHECKING:
    from pachs3gw.s3.signing import ChunkSignatureVerifier

__all__ = ["AwsChunkedDecoder"]

_SIZE = re.compile(rb"[0-9a-fA-F]{1,16}")
_EMPTY_SHA256 = hashlib.sha256(b"").digest()
#: The whole trailer section (all lines) may not exceed this.
MAX_TRAILER_BYTES = 16 * 1024


class _State(enum.Enum):
    HEADER = "chunk header"
    DATA = "chunk data"
    DATA_CRLF = "chunk data terminator"
    TRAILER = "trailer"
    DONE = "done"


def _malformed(what: str) -> errors.S3Error:
    return errors.InvalidRequest(f"Malformed aws-chunked body: {what}.")


class AwsChunkedDecoder:
    """Turns an aws-chunked byte stream into payload pieces and trailers.

    :param chunk_verifier: checks each chunk signature and the trailer
        signature (signed streaming uploads); ``None`` accepts chunks whether
        or not they carry signatures (unsigned streaming, or auth off).
    :param max_chunk_header: longest accepted chunk-header or trailer line.
    :param expected_length: ``x-amz-decoded-content-length``; the decoded
        payload must be exactly this long (IncompleteBody otherwise).
    """

    def __init__(
        self,
        chunk_verifier: ChunkSignatureVerifier | None = None,
        max_chunk_header: int = 4096,
        expected_length: int | None = None,
    ) -> None:
        self._verifier = chunk_verifier
        self._max_line = max_chunk_header
        self._expected_length = expected_length
        self._state = _State.HEADER
        self._line = bytearray()
        self._remaining = 0
        self._crlf_seen = 0
        self._chunk_sig: str | None = None
        self._chunk_hash: hashlib._Hash | None = None
        self._decoded = 0
        self._trailers: dict[str, str] = {}
        self._trailer_lines: list[tuple[str, str]] = []
        self._trailer_bytes = 0
        self._trailer_sig: str | None = None

    @property
    def decoded_length(self) -> int:
        """Payload bytes handed out so far."""
        return self._decoded

    def feed(self, data: bytes) -> list[bytes]:
        """Decode the next piece of the stream; return the payload bytes it completes.

        Raises InvalidRequest on bad framing, SignatureDoesNotMatch on a bad
        chunk or trailer signature, IncompleteBody when the payload outgrows
        ``expected_length``.
        """
        out: list[bytes] = []
        pos = 0
        n = len(data)
        while pos < n:
            state = self._state
            if state is _State.DATA:
                take = min(self._remaining, n - pos)
                piece = data if (pos == 0 and take == n) else data[pos : pos + take]
                pos += take
                self._remaining -= take
                self._decoded += take
                if self._chunk_hash is not None:
                    self._chunk_hash.update(piece)
                out.append(bytes(piece))
                if self._remaining == 0:
                    self._end_chunk_data()
            elif state is _State.DATA_CRLF:
                if data[pos] != b"\r\n"[self._crlf_seen]:
                    raise _malformed("chunk data not followed by CRLF")
                pos += 1
                self._crlf_seen += 1
                if self._crlf_seen == 2:
                    self._state = _State.HEADER
            elif state is _State.DONE:
                raise _malformed("data after the final chunk")
            else:
                nl = data.find(b"\n", pos)
                end = n if nl < 0 else nl + 1
                if len(self._line) + (end - pos) > self._max_line + 2:
                    raise _malformed(f"{state.value} line too long")
                self._line += data[pos:end]
                pos = end
                if nl >= 0:
                    line = bytes(self._line)
                    self._line.clear()
                    if not line.endswith(b"\r\n"):
                        raise _malformed(f"{state.value} line not terminated by CRLF")
                    if state is _State.HEADER:
                        self._chunk_header(line[:-2])
                    else:
                        self._trailer_line(line[:-2])
        return out

    def _chunk_header(self, line: bytes) -> None:
        size_part, _, ext = line.partition(b";")
        size_part = size_part.strip()
        if not _SIZE.fullmatch(size_part):
            raise _malformed("invalid chunk size")
        size = int(size_part, 16)
        sig: str | None = None
        if ext:
            for param in ext.split(b";"):
                name, eq, value = param.partition(b"=")
                if name.strip() == b"chunk-signature" and eq:
                    try:
                        sig = value.strip().decode("ascii")
                    except UnicodeDecodeError:
                        raise _malformed("invalid chunk signature") from None
        if self._verifier is not None and sig is None:
            raise errors.SignatureDoesNotMatch("Chunk signature missing.")
        if self._expected_length is not None and self._decoded + size > self._expected_length:
            raise errors.IncompleteBody(
                "The decoded body is longer than x-amz-decoded-content-length."
            )
        self._chunk_sig = sig
        if size == 0:
            if self._verifier is not None:
                assert sig is not None
                self._verifier.verify_chunk(_EMPTY_SHA256, sig)
            if self._expected_length is not None and self._decoded != self._expected_length:
                raise errors.IncompleteBody(
                    "The decoded body is shorter than x-amz-decoded-content-length."
                )
            self._state = _State.TRAILER
            return
        self._remaining = size
        self._chunk_hash = hashlib.sha256() if self._verifier is not None else None
        self._state = _State.DATA

    def _end_chunk_data(self) -> None:
        if self._verifier is not None:
            assert self._chunk_hash is not None and self._chunk_sig is not None
            self._verifier.verify_chunk(self._chunk_hash.digest(), self._chunk_sig)
        self._chunk_hash = None
        self._crlf_seen = 0
        self._state = _State.DATA_CRLF

    def _trailer_line(self, line: bytes) -> None:
        if not line:
            self._end_trailers()
            return
        self._trailer_bytes += len(line) + 2
        if self._trailer_bytes > MAX_TRAILER_BYTES:
            raise errors.MalformedTrailerError()
        if self._trailer_sig is not None:
            # The signature must be the last trailer line.
            raise errors.MalformedTrailerError()
        name_b, colon, value_b = line.partition(b":")
        try:
            name = name_b.strip().decode("ascii").lower()
            value = value_b.strip().decode("ascii")
        except UnicodeDecodeError:
            raise errors.MalformedTrailerError() from None
        if not colon or not name:
            raise errors.MalformedTrailerError()
        if name == "x-amz-trailer-signature":
            self._trailer_sig = value
            return
        if name in self._trailers:
            raise errors.MalformedTrailerError()
        self._trailers[name] = value
        self._trailer_lines.append((name, value))

    def _end_trailers(self) -> None:
        if self._verifier is not None and (
            self._trailer_lines or self._trailer_sig is not None or self._verifier.expects_trailer
        ):
            if self._trailer_sig is None:
                raise errors.SignatureDoesNotMatch("Trailer signature missing.")
            text = "".join(f"{n}:{v}\n" for n, v in self._trailer_lines).encode("ascii")
            self._verifier.verify_trailer(text, self._trailer_sig)
        self._state = _State.DONE

    def finish(self) -> dict[str, str]:
        """Declare the end of the stream; return the trailers (lowercase names).

        Raises IncompleteBody when the stream stopped before its final
        chunk and terminating empty line.
        """
        if self._state is not _State.DONE:
            raise errors.IncompleteBody(
                f"The aws-chunked body ended in the middle of a {self._state.value}."
            )
        return dict(self._trailers)
