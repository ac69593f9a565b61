"""What every operation handler shares: answering, bodies, keepalive, copy sources.

Each handler object (``_bucket_ops``, ``_object_ops``...) holds one
:class:`Responder`, the single home of how a call is answered and how its
body is read; :class:`~pachs3gw.s3.app.S3Server` makes one and hands it to
all of them.

Threads: reactor thread only; bodies are read in the injected thread pool.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TypeVar

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

from pachs3gw.s3 import conditions, errors
from pachs3gw.s3._call import _Call
from pachs3gw.s3.body import StreamingBody
from pachs3gw.s3.checksums import BodyVerifier
from pachs3gw.s3.chunked import AwsChunkedDecoder
from pachs3gw.s3.http_interfaces import IS3Reactor, IS3Request
from pachs3gw.s3.interfaces import BodyAborted, CopySource, ObjectInfo
from pachs3gw.s3.limits import MAX_XML_BODY

T = TypeVar("T")


_XML_PROLOG = b'<?xml version="1.0" encoding="UTF-8"?>\n'


def _without_prolog(body: bytes) -> bytes:
    return body[len(_XML_PROLOG) :] if body.startswith(_XML_PROLOG) else body


class Responder:
    """How handlers answer a call and read its body (reactor thread only).

    :param reactor: for keepalive timers and the current time.
    :param pool: the thread pool request bodies are read in.
    """

    _log = Logger()

    def __init__(self, reactor: IS3Reactor, pool: ThreadPool) -> None:
        self.reactor = reactor
        self.pool = pool
        #: CompleteMultipartUpload and copies that take longer than this many
        #: seconds get their 200 at once and whitespace every
        #: ``keepalive_interval`` seconds until the result (or an error
        #: document) follows, as S3 does: SDKs would otherwise time out reading.
        self.keepalive_after = 10.0
        self.keepalive_interval = 10.0

    @staticmethod
    def body_error(request: IS3Request) -> BaseException | None:
        """The error the request body raised in the backend's hands, if any.

        The backend may wrap it or answer something generic; the client
        must see what was wrong with its body (BadDigest...).
        """
        err = request.body.error if request.body is not None else None
        if isinstance(err, (errors.S3Error, BodyAborted)):
            return err
        return None

    # Responses -----------------------------------------------------------------

    async def keepalive(self, call: _Call, d: Deferred[T]) -> T:
        """Await a backend call that may be slow, keeping the client's read alive."""
        request = call.request
        ticker: IDelayedCall | None = None

        def tick() -> None:
            nonlocal ticker
            if request.finished or request.disconnected:
                return
            if not request.startedWriting:
                call.keepalive = True
                request.setResponseCode(200)
                request.setHeader(b"content-type", b"application/xml")
                request.write(_XML_PROLOG)
            else:
                request.write(b" ")
            ticker = self.reactor.callLater(self.keepalive_interval, tick)

        ticker = self.reactor.callLater(self.keepalive_after, tick)
        try:
            return await d
        finally:
            if ticker is not None and ticker.active():
                ticker.cancel()

    def send(
        self,
        call: _Call,
        body: bytes = b"",
        *,
        status: int = 200,
        content_type: bytes | None = b"application/xml",
        headers: Mapping[bytes, bytes] | None = None,
    ) -> None:
        request = call.request
        if call.keepalive:
            request.write(_without_prolog(body))
            request.finish()
            return
        request.setResponseCode(status)
        for name, value in (headers or {}).items():
            request.setHeader(name, value)
        if body and content_type is not None:
            request.setHeader(b"content-type", content_type)
        if status not in (204, 304):
            request.setHeader(b"content-length", b"%d" % len(body))
        if body and call.method != "HEAD":
            request.write(body)
        request.finish()

    # Bodies --------------------------------------------------------------------

    def prepare_body(self, call: _Call, *, compute: tuple[str, ...] = ()) -> StreamingBody:
        """Configure the request's streaming body: aws-chunked decoding and digests."""
        h = call.headers
        body = call.request.body
        assert body is not None, "the headers are in, so the body exists"
        encodings = [t.strip().lower() for t in h.get("content-encoding", "").split(",")]
        sha = h.get("x-amz-content-sha256", "")
        # The body is aws-chunked when the signature says so (STREAMING-*) or
        # the client declares the decoded length. A Content-Encoding that
        # merely lists aws-chunked over a plain body (some SDKs copy the
        # header onto every PUT) is a plain body: the token is dropped from
        # the stored encoding and the bytes are taken as they are.
        chunked = sha.startswith("STREAMING-") or (
            "aws-chunked" in encodings and "x-amz-decoded-content-length" in h
        )
        verifier = BodyVerifier.from_headers(h, compute=compute)
        expected: int | None = None
        if chunked:
            decoded = h.get("x-amz-decoded-content-length")
            if decoded is not None:
                if not decoded.strip().isdigit():
                    raise errors.InvalidArgument(
                        "x-amz-decoded-content-length must be a number.",
                        extra={"ArgumentName": "x-amz-decoded-content-length"},
                    )
                expected = int(decoded)
            decoder = AwsChunkedDecoder(chunk_verifier=call.chunk_verifier, expected_length=expected)
        else:
            decoder = None
            length = h.get("content-length")
            if length is not None and length.strip().isdigit():
                expected = int(length)
        body.configure(decoder=decoder, verifier=verifier, expected_length=expected)
        return body

    async def read_xml_body(self, call: _Call, required: bool = True) -> bytes:
        """The whole (small) XML body, verified like any body."""
        body = self.prepare_body(call)
        data: bytes = await deferToThreadPool(
            self.reactor, self.pool, body.read_all, MAX_XML_BODY
        )
        if required and not data.strip():
            raise errors.MalformedXML()
        return data

    async def with_body(self, call: _Call, d: Deferred[T]) -> T:
        """Await a backend call that consumes the body; the body's own error wins."""
        try:
            return await d
        except BaseException:
            err = self.body_error(call.request)
            if err is not None:
                raise err from None
            raise

    # Copies --------------------------------------------------------------------

    async def check_copy_source(self, call: _Call, source: CopySource) -> ObjectInfo | None:
        """HEAD the source when a condition or a range needs it; apply the conditions."""
        needs = any(k.startswith("x-amz-copy-source-if-") for k in call.headers) or (
            "x-amz-copy-source-range" in call.headers
        )
        if not needs:
            return None
        info = await call.backend.head_object(source.bucket, source.key, source.version_id)
        conditions.check_copy_source_preconditions(call.headers, info.etag, info.last_modified)
        return info

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.reactor.seconds(), timezone.utc)
