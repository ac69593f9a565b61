"""The S3 REST API as a Klein app: HTTP ⇄ backend calls, nothing else.

Requests arrive through :class:`~pachs3gw.s3.request.StreamingRequest` (see
:mod:`pachs3gw.s3.site`), so a handler runs as soon as the headers are in and
the body is still on the wire.  :class:`S3Server` routes path-style URLs
itself — ``/``, ``/{bucket}``, ``/{bucket}/{key}`` — from the raw request
line: werkzeug's routing would unquote ``%2F`` and merge ``//``, and S3 keys
may contain anything.  The query's sub-resources (``?uploads``,
``?delete=``...) pick the operation.

Every response carries ``x-amz-request-id``/``x-amz-id-2``; every failure
is rendered by :meth:`S3Server._render_error` as S3's XML error document.
An exception that is not an :class:`~pachs3gw.s3.errors.S3Error` is a bug:
it is logged with its traceback and answered 500 InternalError.

Threads: everything here runs on the reactor thread; bodies are iterated by
the backend (uploads) or :class:`~pachs3gw.s3.download.ObjectProducer`
(downloads) in the injected thread pool.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
import html
import os
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timezone
from typing import Any, TypeVar
from urllib.parse import unquote_to_bytes

import attrs
from klein import Klein
from twisted.internet.defer import CancelledError, Deferred, ensureDeferred
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from twisted.web.resource import IResource, Resource

from pachs3gw.s3 import conditions, errors, ranges, xml_output
from pachs3gw.s3.checksums import BodyVerifier
from pachs3gw.s3.chunked import AwsChunkedDecoder
from pachs3gw.s3.download import DownloadStopped, ObjectProducer
from pachs3gw.s3.interfaces import (
    BodyAborted,
    CompletedPart,
    CopySource,
    IAuthenticator,
    IBackend,
    IBackendFactory,
    ObjectInfo,
    ObjectMetadata,
)

__all__ = ["S3Server", "UNSUPPORTED_SUBRESOURCES"]

T = TypeVar("T")

#: Sub-resources of features PFS has no equivalent for: 501 NotImplemented.
UNSUPPORTED_SUBRESOURCES = frozenset(
    {
        "accelerate",
        "analytics",
        "attributes",
        "cors",
        "encryption",
        "intelligent-tiering",
        "inventory",
        "legal-hold",
        "lifecycle",
        "logging",
        "metadataTable",
        "metrics",
        "notification",
        "object-lock",
        "ownershipControls",
        "policy",
        "policyStatus",
        "publicAccessBlock",
        "replication",
        "requestPayment",
        "restore",
        "retention",
        "select",
        "tagging",
        "torrent",
        "website",
    }
)

_CONTENT_HEADERS = (
    "content-type",
    "content-encoding",
    "content-disposition",
    "content-language",
    "cache-control",
    "expires",
)
#: ``response-*`` query parameters of GetObject → the header they override.
_RESPONSE_OVERRIDES = {
    "response-content-type": b"Content-Type",
    "response-content-language": b"Content-Language",
    "response-expires": b"Expires",
    "response-cache-control": b"Cache-Control",
    "response-content-disposition": b"Content-Disposition",
    "response-content-encoding": b"Content-Encoding",
}
_META_PREFIX = "x-amz-meta-"
MAX_KEYS = 1000
MAX_PART_NUMBER = 10000
MAX_KEY_BYTES = 1024
#: Largest XML request body read (CompleteMultipartUpload of 10,000 parts
#: with checksums is ~2.5 MB).
MAX_XML_BODY = 8 * 1024 * 1024
_DEFAULT_CONTENT_TYPE = "binary/octet-stream"


@attrs.define
class _Call:
    """One S3 request as the handlers see it (reactor thread only)."""

    request: Any  # StreamingRequest
    method: str
    raw_path: bytes
    raw_query: bytes
    bucket: str
    key: str
    #: First value of each query parameter (decoded).
    query: dict[str, str]
    #: Lowercase header name → values joined with ``,`` (latin-1 decoded).
    headers: dict[str, str]
    request_id: str
    backend: IBackend | None = None
    chunk_verifier: Any = None
    #: A 200 is already out with whitespace keeping the client waiting;
    #: the result (or the error) follows as its body.
    keepalive: bool = False

    @property
    def resource(self) -> str:
        if not self.bucket:
            return "/"
        return f"/{self.bucket}/{self.key}" if self.key else f"/{self.bucket}"

    def has(self, name: str) -> bool:
        return name in self.query


class _NoRewriteResource(Resource):
    """Hands every request to Klein with an empty ``postpath``.

    twisted.web splits and unquotes the path into ``postpath`` and Klein
    matches on that; S3 keys survive neither (``%2F``, ``//``, bytes that
    are not UTF-8).  :class:`S3Server` routes from the raw request line
    instead, so Klein only ever sees ``/``.
    """

    isLeaf = True

    def __init__(self, inner: IResource) -> None:
        super().__init__()
        self._inner = inner

    def render(self, request: Any) -> Any:
        request.prepath = []
        request.postpath = []
        return self._inner.render(request)


class S3Server:
    """The S3 API over an :class:`IBackendFactory`, as a Klein app.

    :param reactor: the reactor (``callFromThread``, ``seconds``).
    :param pool: the thread pool bodies are iterated in (the gateway's own,
        not the reactor's).
    :param backends: gives the backend acting for an access key.
    :param authenticator: whether and how signatures are checked.
    :param region: what GetBucketLocation and the signing scope use.
    """

    _app = Klein()
    _log = Logger()

    #: CompleteMultipartUpload and copies that take longer than this many
    #: seconds get their 200 at once and whitespace every
    #: ``keepalive_interval`` seconds until the result (or an error
    #: document) follows, as S3 does: SDKs would otherwise time out reading.
    keepalive_after = 10.0
    keepalive_interval = 10.0

    def __init__(
        self,
        reactor: Any,
        pool: ThreadPool,
        backends: IBackendFactory,
        authenticator: IAuthenticator,
        *,
        region: str = "us-east-1",
    ) -> None:
        self._reactor = reactor
        self._pool = pool
        self._backends = backends
        self._auth = authenticator
        self._region = region

    def resource(self) -> IResource:
        """The twisted.web resource; serve it with :func:`pachs3gw.s3.site.make_site`."""
        return _NoRewriteResource(self._app.resource())

    # Entry point ---------------------------------------------------------------

    @_app.route("/", branch=False, strict_slashes=False)
    def _serve(self, request: Any) -> Any:
        return ensureDeferred(self._handle(request))

    async def _handle(self, request: Any) -> None:
        request_id = os.urandom(8).hex().upper()
        host_id = base64.b64encode(os.urandom(24)).decode("ascii")
        stats = getattr(request, "stats", None)
        if stats is not None:
            stats.request_id = request_id
        request.setHeader(b"x-amz-request-id", request_id.encode("ascii"))
        request.setHeader(b"x-amz-id-2", host_id.encode("ascii"))
        request.setHeader(b"server", b"pachs3gw")
        call: _Call | None = None
        try:
            call = self._parse_call(request, request_id)
            if stats is not None:
                stats.bucket = call.bucket
                stats.key = call.key
            handler = self._route(call)
            if stats is not None:
                stats.operation = handler.__name__.lstrip("_")
            await self._authenticate(call)
            await handler(call)
        except conditions.NotModified as e:
            self._render_not_modified(request, e)
        except BaseException as e:
            error = self._body_error(request) or e
            if getattr(request, "disconnected", False):
                # The client is gone: nobody to answer.  Leftover
                # CancelledError/BodyAborted/DownloadStopped are expected here.
                if not isinstance(error, (CancelledError, BodyAborted, DownloadStopped, errors.S3Error)):
                    self._log.failure(
                        "Error after the client disconnected from {method} {uri}",
                        failure=Failure(error),
                        method=request.method,
                        uri=request.uri,
                    )
                return
            if isinstance(error, errors.S3Error):
                self._render_error(request, call, error, request_id, host_id)
                if getattr(request, "disconnected", False) or not request.finished:
                    await request.when_disconnected()
            elif isinstance(error, BodyAborted):
                request.abort_connection()
                await request.when_disconnected()
            else:
                self._log.failure(
                    "Unhandled error in {method} {uri} (request {request_id})",
                    failure=Failure(error),
                    method=request.method,
                    uri=request.uri,
                    request_id=request_id,
                )
                self._render_error(request, call, errors.InternalError(), request_id, host_id)
                if not request.finished:
                    await request.when_disconnected()

    @staticmethod
    def _body_error(request: Any) -> BaseException | None:
        """The error the request body raised in the backend's hands, if any.

        The backend may wrap it or answer something generic; the client
        must see what was wrong with its body (BadDigest...).
        """
        body = getattr(request, "body", None)
        err = getattr(body, "error", None)
        if isinstance(err, (errors.S3Error, BodyAborted)):
            return err
        return None

    # Parsing and routing -------------------------------------------------------

    def _parse_call(self, request: Any, request_id: str) -> _Call:
        uri: bytes = request.uri
        raw_path, _, raw_query = uri.partition(b"?")
        if not raw_path.startswith(b"/"):
            # Absolute form (``http://host/path``), as proxies send it.
            scheme, sep, rest = raw_path.partition(b"://")
            if not sep:
                raise errors.InvalidURI()
            raw_path = b"/" + rest.partition(b"/")[2]
        bucket_raw, _, key_raw = raw_path[1:].partition(b"/")
        try:
            bucket = unquote_to_bytes(bucket_raw).decode("utf-8")
            key = unquote_to_bytes(key_raw).decode("utf-8")
        except UnicodeDecodeError:
            raise errors.InvalidURI("Couldn't parse the specified URI: keys are UTF-8.") from None
        query = _parse_query(raw_query)
        headers: dict[str, str] = {}
        for name, values in request.requestHeaders.getAllRawHeaders():
            headers[name.decode("latin-1").lower()] = ",".join(
                v.decode("latin-1") for v in values
            )
        return _Call(
            request=request,
            method=request.method.decode("latin-1"),
            raw_path=raw_path,
            raw_query=raw_query,
            bucket=bucket,
            key=key,
            query=query,
            headers=headers,
            request_id=request_id,
        )

    def _route(self, call: _Call) -> Callable[[_Call], Awaitable[None]]:
        """Pick the operation from the method, the path level and the sub-resources."""
        m = call.method
        if m not in ("GET", "HEAD", "PUT", "POST", "DELETE"):
            raise errors.MethodNotAllowed()
        if not call.bucket:
            if m in ("GET", "HEAD"):
                return self._list_buckets
            raise errors.MethodNotAllowed()
        unsupported = sorted(UNSUPPORTED_SUBRESOURCES.intersection(call.query))
        if unsupported:
            raise errors.NotImplemented_(
                f"The {unsupported[0]} sub-resource is not implemented by this gateway."
            )
        if not call.key:
            return self._route_bucket(call)
        if len(call.key.encode("utf-8")) > MAX_KEY_BYTES and m in ("PUT", "POST"):
            raise errors.KeyTooLongError()
        return self._route_object(call)

    def _route_bucket(self, call: _Call) -> Callable[[_Call], Awaitable[None]]:
        m = call.method
        if m in ("GET", "HEAD") and call.has("acl"):
            return self._get_bucket_acl
        if call.has("acl"):
            raise errors.NotImplemented_("ACLs are not implemented by this gateway.")
        if m == "GET":
            if call.has("location"):
                return self._get_bucket_location
            if call.has("versioning"):
                return self._get_bucket_versioning
            if call.has("versions"):
                return self._list_object_versions
            if call.has("uploads"):
                return self._list_multipart_uploads
            if call.query.get("list-type") == "2":
                return self._list_objects_v2
            return self._list_objects_v1
        if m == "HEAD":
            return self._head_bucket
        if m == "PUT":
            if call.has("versioning"):
                raise errors.NotImplemented_(
                    "Versioning is always on (every commit is a version) and can't be changed."
                )
            return self._create_bucket
        if m == "DELETE":
            return self._delete_bucket
        # POST
        if call.has("delete"):
            return self._delete_objects
        raise errors.NotImplemented_("POST object (browser form upload) is not implemented.")

    def _route_object(self, call: _Call) -> Callable[[_Call], Awaitable[None]]:
        m = call.method
        if m in ("GET", "HEAD") and call.has("acl"):
            return self._get_object_acl
        if call.has("acl"):
            raise errors.NotImplemented_("ACLs are not implemented by this gateway.")
        if m == "GET":
            if call.has("uploadId"):
                return self._list_parts
            return self._get_object
        if m == "HEAD":
            return self._head_object
        if m == "PUT":
            if call.has("uploadId") or call.has("partNumber"):
                if "x-amz-copy-source" in call.headers:
                    return self._upload_part_copy
                return self._upload_part
            if "x-amz-copy-source" in call.headers:
                return self._copy_object
            return self._put_object
        if m == "DELETE":
            if call.has("uploadId"):
                return self._abort_multipart_upload
            return self._delete_object
        # POST
        if call.has("uploads"):
            return self._create_multipart_upload
        if call.has("uploadId"):
            return self._complete_multipart_upload
        raise errors.MethodNotAllowed()

    # Authentication ------------------------------------------------------------

    async def _authenticate(self, call: _Call) -> None:
        """Check the signature (auth on) and pick the caller's backend."""
        if not self._auth.enabled:
            call.backend = self._backends.backend_for(None)
            return
        from pachs3gw.s3 import signing

        headers: dict[str, list[str]] = {}
        for name, values in call.request.requestHeaders.getAllRawHeaders():
            headers.setdefault(name.decode("latin-1").lower(), []).extend(
                v.decode("latin-1") for v in values
            )
        signed = signing.SignedRequest(
            method=call.method,
            raw_path=call.raw_path,
            raw_query=call.raw_query,
            headers=headers,
            now=datetime.fromtimestamp(self._reactor.seconds(), timezone.utc),
        )
        creds = signing.parse_credentials(signed)
        if creds is None:
            raise errors.AccessDenied()
        stats = getattr(call.request, "stats", None)
        if stats is not None:
            # With Pachyderm auth the access key is a token: log a digest.
            stats.access_key = "sha256:" + hashlib.sha256(creds.access_key.encode()).hexdigest()[:12]
        secret = await self._auth.secret_for(creds.access_key)
        call.chunk_verifier = signing.verify(signed, creds, secret)
        call.backend = self._backends.backend_for(creds.access_key)

    # Responses -----------------------------------------------------------------

    async def _keepalive(self, call: _Call, d: Deferred[T]) -> T:
        """Await a backend call that may be slow, keeping the client's read alive."""
        request = call.request
        ticker: Any = None

        def tick() -> None:
            nonlocal ticker
            if request.finished or getattr(request, "disconnected", False):
                return
            if not request.startedWriting:
                call.keepalive = True
                request.setResponseCode(200)
                request.setHeader(b"content-type", b"application/xml")
                request.write(_XML_PROLOG)
            else:
                request.write(b" ")
            ticker = self._reactor.callLater(self.keepalive_interval, tick)

        ticker = self._reactor.callLater(self.keepalive_after, tick)
        try:
            return await d
        finally:
            if ticker.active():
                ticker.cancel()

    def _send(
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

    def _render_error(
        self,
        request: Any,
        call: _Call | None,
        error: errors.S3Error,
        request_id: str,
        host_id: str,
    ) -> None:
        stats = getattr(request, "stats", None)
        if stats is not None:
            stats.error_code = error.code
        if request.finished:
            return
        resource = error.resource or (call.resource if call is not None else "/")
        body = xml_output.error(
            error.code, error.message, resource, request_id, error.extra, host_id=host_id
        )
        if request.startedWriting:
            if call is not None and call.keepalive:
                # A 200 with whitespace is out: the error is its body, which
                # SDKs check for (as S3 does it).
                request.write(_without_prolog(body))
                request.finish()
                return
            # Headers (and maybe some bytes) are out: the only honest way to
            # say "this response is broken" is to cut the connection.
            request.abort_connection()
            return
        request.setResponseCode(error.status)
        # Headers set for a success response that never happened must go.
        for name in (b"etag", b"last-modified", b"x-amz-version-id", b"content-range"):
            request.responseHeaders.removeHeader(name)
        for name, value in error.headers.items():
            request.setHeader(name.encode("latin-1"), value.encode("latin-1"))
        request.setHeader(b"content-type", b"application/xml")
        request.setHeader(b"content-length", b"%d" % len(body))
        if request.method != b"HEAD":
            request.write(body)
        request.finish()

    def _render_not_modified(self, request: Any, e: conditions.NotModified) -> None:
        request.setResponseCode(304)
        request.setHeader(b"etag", e.etag.encode("latin-1"))
        request.setHeader(b"last-modified", _http_date(e.last_modified))
        request.finish()

    # Bodies --------------------------------------------------------------------

    def _prepare_body(self, call: _Call, *, compute: tuple[str, ...] = ()) -> Any:
        """Configure the request's streaming body: aws-chunked decoding and digests."""
        h = call.headers
        body = call.request.body
        encodings = [t.strip().lower() for t in h.get("content-encoding", "").split(",")]
        sha = h.get("x-amz-content-sha256", "")
        chunked = "aws-chunked" in encodings or sha.startswith("STREAMING-")
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

    async def _read_xml_body(self, call: _Call, required: bool = True) -> bytes:
        """The whole (small) XML body, verified like any body."""
        body = self._prepare_body(call)
        data: bytes = await deferToThreadPool(
            self._reactor, self._pool, body.read_all, MAX_XML_BODY
        )
        if required and not data.strip():
            raise errors.MalformedXML()
        return data

    async def _with_body(self, call: _Call, d: Deferred[T]) -> T:
        """Await a backend call that consumes the body; the body's own error wins."""
        try:
            return await d
        except BaseException:
            err = self._body_error(call.request)
            if err is not None:
                raise err from None
            raise

    # Service -------------------------------------------------------------------

    async def _list_buckets(self, call: _Call) -> None:
        assert call.backend is not None
        buckets = await call.backend.list_buckets()
        accept = call.headers.get("accept", "")
        if not self._auth.enabled and "text/html" in accept:
            rows = "".join(
                f"<tr><td><a href=\"/{html.escape(b.name)}\">{html.escape(b.name)}</a></td>"
                f"<td>{html.escape(xml_output.format_timestamp(b.created))}</td></tr>"
                for b in buckets
            )
            page = (
                "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Buckets</title>"
                "</head><body><h1>Buckets</h1><table><tr><th>Name</th><th>Created</th></tr>"
                f"{rows}</table></body></html>"
            ).encode("utf-8")
            self._send(call, page, content_type=b"text/html; charset=utf-8")
            return
        self._send(call, xml_output.list_all_my_buckets(buckets))

    # Buckets -------------------------------------------------------------------

    async def _create_bucket(self, call: _Call) -> None:
        assert call.backend is not None
        if not call.request.body_complete or call.headers.get("content-length", "0") != "0":
            from pachs3gw.s3 import xml_input

            data = await self._read_xml_body(call, required=False)
            xml_input.parse_create_bucket(data)
        await call.backend.create_bucket(call.bucket)
        self._send(call, headers={b"location": b"/" + call.bucket.encode("utf-8")})

    async def _delete_bucket(self, call: _Call) -> None:
        assert call.backend is not None
        await call.backend.delete_bucket(call.bucket)
        self._send(call, status=204)

    async def _head_bucket(self, call: _Call) -> None:
        assert call.backend is not None
        await call.backend.head_bucket(call.bucket)
        self._send(call, headers={b"x-amz-bucket-region": self._region.encode("ascii")})

    async def _get_bucket_location(self, call: _Call) -> None:
        assert call.backend is not None
        region = await call.backend.get_bucket_location(call.bucket)
        self._send(call, xml_output.location_constraint(region))

    async def _get_bucket_versioning(self, call: _Call) -> None:
        assert call.backend is not None
        status = await call.backend.get_bucket_versioning(call.bucket)
        self._send(call, xml_output.versioning_configuration(status))

    async def _get_bucket_acl(self, call: _Call) -> None:
        assert call.backend is not None
        await call.backend.head_bucket(call.bucket)
        self._send(call, xml_output.access_control_policy())

    # Listings ------------------------------------------------------------------

    def _max(self, call: _Call, name: str, default: int = MAX_KEYS) -> int:
        value = call.query.get(name)
        if value is None or value == "":
            return default
        if not value.isascii() or not value.lstrip("-").isdigit() or int(value) < 0:
            raise errors.InvalidArgument(
                f"Provided {name} not an integer or within integer range",
                extra={"ArgumentName": name, "ArgumentValue": value},
            )
        return min(int(value), default)

    def _encoding_type(self, call: _Call) -> str | None:
        enc = call.query.get("encoding-type")
        if enc is None or enc == "":
            return None
        if enc.lower() != "url":
            raise errors.InvalidArgument(
                "Invalid Encoding Method specified in Request",
                extra={"ArgumentName": "encoding-type", "ArgumentValue": enc},
            )
        return "url"

    async def _list_objects_v1(self, call: _Call) -> None:
        assert call.backend is not None
        q = call.query
        prefix, delimiter, marker = q.get("prefix", ""), q.get("delimiter", ""), q.get("marker", "")
        max_keys = self._max(call, "max-keys")
        enc = self._encoding_type(call)
        page = await call.backend.list_objects(call.bucket, prefix, delimiter, marker, max_keys)
        self._send(
            call,
            xml_output.list_bucket_result_v1(
                call.bucket,
                page,
                prefix=prefix,
                delimiter=delimiter,
                marker=marker,
                max_keys=max_keys,
                encoding_type=enc,
            ),
        )

    async def _list_objects_v2(self, call: _Call) -> None:
        assert call.backend is not None
        q = call.query
        prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
        max_keys = self._max(call, "max-keys")
        enc = self._encoding_type(call)
        token = q.get("continuation-token")
        start_after = q.get("start-after", "")
        if token is not None:
            marker = _decode_token(token)
        else:
            marker = start_after
        page = await call.backend.list_objects(call.bucket, prefix, delimiter, marker, max_keys)
        next_token = (
            _encode_token(page.next_marker)
            if page.is_truncated and page.next_marker is not None
            else None
        )
        self._send(
            call,
            xml_output.list_bucket_result_v2(
                call.bucket,
                page,
                prefix=prefix,
                delimiter=delimiter,
                max_keys=max_keys,
                encoding_type=enc,
                continuation_token=token,
                next_continuation_token=next_token,
                start_after=start_after or None,
                fetch_owner=q.get("fetch-owner", "").lower() == "true",
            ),
        )

    async def _list_object_versions(self, call: _Call) -> None:
        assert call.backend is not None
        q = call.query
        prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
        key_marker, vid_marker = q.get("key-marker", ""), q.get("version-id-marker", "")
        if vid_marker and not key_marker:
            raise errors.InvalidArgument(
                "A version-id marker cannot be specified without a key marker.",
                extra={"ArgumentName": "version-id-marker", "ArgumentValue": vid_marker},
            )
        max_keys = self._max(call, "max-keys")
        enc = self._encoding_type(call)
        page = await call.backend.list_object_versions(
            call.bucket, prefix, delimiter, key_marker, vid_marker, max_keys
        )
        self._send(
            call,
            xml_output.list_versions_result(
                call.bucket,
                page,
                prefix=prefix,
                delimiter=delimiter,
                key_marker=key_marker,
                version_id_marker=vid_marker,
                max_keys=max_keys,
                encoding_type=enc,
            ),
        )

    # Objects -------------------------------------------------------------------

    async def _put_object(self, call: _Call) -> None:
        assert call.backend is not None
        metadata = _metadata_from_headers(call.headers)
        body = self._prepare_body(call)
        result = await self._with_body(
            call, call.backend.put_object(call.bucket, call.key, body, metadata)
        )
        headers = {b"etag": conditions.format_etag(result.etag).encode("latin-1")}
        if result.version_id:
            headers[b"x-amz-version-id"] = result.version_id.encode("latin-1")
        for alg, value in result.checksums.items():
            headers[f"x-amz-checksum-{alg.lower()}".encode("latin-1")] = value.encode("latin-1")
        self._send(call, headers=headers)

    def _object_headers(
        self, call: _Call, info: ObjectInfo, *, whole_object: bool
    ) -> dict[bytes, bytes]:
        headers: dict[bytes, bytes] = {
            b"etag": conditions.format_etag(info.etag).encode("latin-1"),
            b"last-modified": _http_date(info.last_modified),
            b"accept-ranges": b"bytes",
        }
        content = dict(info.metadata.headers)
        content.setdefault("content-type", _DEFAULT_CONTENT_TYPE)
        for name, value in content.items():
            headers[name.encode("latin-1")] = _header_value(value)
        for name, value in info.metadata.user.items():
            headers[(_META_PREFIX + name).encode("latin-1")] = _header_value(value)
        if info.version_id:
            headers[b"x-amz-version-id"] = info.version_id.encode("latin-1")
        if info.part_sizes:
            headers[b"x-amz-mp-parts-count"] = b"%d" % len(info.part_sizes)
        if (
            whole_object
            and info.checksums
            and call.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED"
        ):
            for alg, value in info.checksums.items():
                headers[f"x-amz-checksum-{alg.lower()}".encode("latin-1")] = value.encode("latin-1")
        if call.method == "GET":
            for param, header in _RESPONSE_OVERRIDES.items():
                if param in call.query:
                    headers[header.lower()] = _header_value(call.query[param])
        return headers

    def _select(self, call: _Call, info: ObjectInfo) -> tuple[int, int, int, dict[bytes, bytes]]:
        """``(status, offset, length, extra headers)`` for a GET/HEAD of ``info``.

        Applies ``?partNumber=`` and ``Range``; raises InvalidRange / InvalidArgument.
        """
        size = info.size
        part = call.query.get("partNumber")
        if part is not None:
            number = _part_number(part)
            sizes = info.part_sizes or (size,)
            if number > len(sizes):
                raise errors.InvalidRange(
                    "The requested partnumber is not satisfiable",
                    extra={"PartNumberRequested": str(number), "ActualPartCount": str(len(sizes))},
                )
            offset = sum(sizes[: number - 1])
            length = sizes[number - 1]
            headers = {b"x-amz-mp-parts-count": b"%d" % len(sizes)}
            if info.part_sizes:
                if length:
                    headers[b"content-range"] = b"bytes %d-%d/%d" % (offset, offset + length - 1, size)
                return 206, offset, length, headers
            return 200, offset, length, headers
        selected = ranges.parse_range(call.headers.get("range"), size)
        if selected is None:
            return 200, 0, size, {}
        start, end = selected
        return (
            206,
            start,
            end - start + 1,
            {b"content-range": b"bytes %d-%d/%d" % (start, end, size)},
        )

    async def _head_object(self, call: _Call) -> None:
        assert call.backend is not None
        info = await call.backend.head_object(call.bucket, call.key, call.query.get("versionId"))
        conditions.check_preconditions(call.headers, info.etag, info.last_modified)
        status, offset, length, extra = self._select(call, info)
        headers = self._object_headers(call, info, whole_object=status == 200)
        headers.update(extra)
        request = call.request
        request.setResponseCode(status)
        for name, value in headers.items():
            request.setHeader(name, value)
        request.setHeader(b"content-length", b"%d" % length)
        request.finish()

    async def _get_object(self, call: _Call) -> None:
        assert call.backend is not None
        reader = await call.backend.get_object(call.bucket, call.key, call.query.get("versionId"))
        try:
            info = reader.info
            conditions.check_preconditions(call.headers, info.etag, info.last_modified)
            status, offset, length, extra = self._select(call, info)
        except BaseException:
            reader.cancel()
            raise
        headers = self._object_headers(call, info, whole_object=status == 200)
        headers.update(extra)
        request = call.request
        request.setResponseCode(status)
        for name, value in headers.items():
            request.setHeader(name, value)
        request.setHeader(b"content-length", b"%d" % length)
        if length == 0:
            reader.cancel()
            request.finish()
            return
        producer = ObjectProducer(self._reactor, self._pool, reader, request, offset, length)
        try:
            await producer.start()
        except BaseException as e:
            reader.cancel()
            if getattr(request, "disconnected", False) or isinstance(e, (DownloadStopped, CancelledError)):
                return
            if not request.startedWriting:
                raise
            # Too late for an error document: the client sees a short body.
            self._log.failure(
                "GetObject {bucket}/{key} failed after the response started",
                failure=Failure(e),
                bucket=call.bucket,
                key=call.key,
            )
            request.abort_connection()
            await request.when_disconnected()
            return
        request.finish()

    async def _delete_object(self, call: _Call) -> None:
        assert call.backend is not None
        result = await call.backend.delete_object(call.bucket, call.key, call.query.get("versionId"))
        if result.error is not None:
            raise result.error
        headers = {}
        if result.version_id:
            headers[b"x-amz-version-id"] = result.version_id.encode("latin-1")
        self._send(call, status=204, headers=headers)

    async def _delete_objects(self, call: _Call) -> None:
        assert call.backend is not None
        from pachs3gw.s3 import xml_input

        data = await self._read_xml_body(call)
        parsed = xml_input.parse_delete(data)
        results = await call.backend.delete_objects(call.bucket, parsed.objects)
        deleted: list[tuple[str, str | None]] = []
        failed: list[tuple[str, str | None, str, str]] = []
        for r in results:
            if r.error is None:
                if not parsed.quiet:
                    deleted.append((r.key, r.version_id))
            elif isinstance(r.error, errors.S3Error):
                failed.append((r.key, r.version_id, r.error.code, r.error.message))
            else:
                self._log.failure(
                    "DeleteObjects {bucket}/{key} failed",
                    failure=Failure(r.error),
                    bucket=call.bucket,
                    key=r.key,
                )
                err = errors.InternalError()
                failed.append((r.key, r.version_id, err.code, err.message))
        self._send(call, xml_output.delete_result(deleted, failed))

    async def _get_object_acl(self, call: _Call) -> None:
        assert call.backend is not None
        await call.backend.head_object(call.bucket, call.key, call.query.get("versionId"))
        self._send(call, xml_output.access_control_policy())

    # Copies --------------------------------------------------------------------

    def _copy_source(self, call: _Call) -> CopySource:
        raw = call.headers["x-amz-copy-source"]
        path, _, query = raw.partition("?")
        try:
            path = unquote_to_bytes(path).decode("utf-8").lstrip("/")
        except UnicodeDecodeError:
            raise errors.InvalidArgument(
                "Copy Source must be URL-encoded UTF-8.",
                extra={"ArgumentName": "x-amz-copy-source", "ArgumentValue": raw},
            ) from None
        bucket, _, key = path.partition("/")
        if not bucket or not key:
            raise errors.InvalidArgument(
                "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
                extra={"ArgumentName": "x-amz-copy-source", "ArgumentValue": raw},
            )
        version = _parse_query(query.encode("latin-1")).get("versionId") or None
        return CopySource(bucket=bucket, key=key, version_id=version)

    async def _check_copy_source(self, call: _Call, source: CopySource) -> ObjectInfo | None:
        """HEAD the source when a condition or a range needs it; apply the conditions."""
        needs = any(k.startswith("x-amz-copy-source-if-") for k in call.headers) or (
            "x-amz-copy-source-range" in call.headers
        )
        if not needs:
            return None
        assert call.backend is not None
        info = await call.backend.head_object(source.bucket, source.key, source.version_id)
        conditions.check_copy_source_preconditions(call.headers, info.etag, info.last_modified)
        return info

    async def _copy_object(self, call: _Call) -> None:
        assert call.backend is not None
        source = self._copy_source(call)
        directive = call.headers.get("x-amz-metadata-directive", "COPY").strip().upper()
        if directive not in ("COPY", "REPLACE"):
            raise errors.InvalidArgument(
                "Unknown metadata directive.",
                extra={"ArgumentName": "x-amz-metadata-directive", "ArgumentValue": directive},
            )
        if (
            directive == "COPY"
            and (source.bucket, source.key) == (call.bucket, call.key)
            and source.version_id is None
        ):
            raise errors.InvalidRequest(
                "This copy request is illegal because it is trying to copy an object to itself "
                "without changing the object's metadata, storage class, website redirect "
                "location or encryption attributes."
            )
        await self._check_copy_source(call, source)
        metadata = _metadata_from_headers(call.headers) if directive == "REPLACE" else None
        result = await self._keepalive(
            call, call.backend.copy_object(source, call.bucket, call.key, metadata)
        )
        headers = {}
        if result.version_id:
            headers[b"x-amz-version-id"] = result.version_id.encode("latin-1")
        if source.version_id:
            headers[b"x-amz-copy-source-version-id"] = source.version_id.encode("latin-1")
        self._send(
            call,
            xml_output.copy_object_result(
                result.etag, result.last_modified or self._now(), result.checksums
            ),
            headers=headers,
        )

    # Multipart -----------------------------------------------------------------

    def _upload_id(self, call: _Call) -> str:
        upload_id = call.query.get("uploadId", "")
        if not upload_id:
            raise errors.NoSuchUpload()
        return upload_id

    async def _create_multipart_upload(self, call: _Call) -> None:
        assert call.backend is not None
        metadata = _metadata_from_headers(call.headers)
        upload_id = await call.backend.create_multipart_upload(call.bucket, call.key, metadata)
        self._send(
            call, xml_output.initiate_multipart_upload_result(call.bucket, call.key, upload_id)
        )

    async def _upload_part(self, call: _Call) -> None:
        assert call.backend is not None
        number = _part_number(call.query.get("partNumber", ""))
        upload_id = self._upload_id(call)
        body = self._prepare_body(call)
        result = await self._with_body(
            call, call.backend.upload_part(call.bucket, call.key, upload_id, number, body)
        )
        headers = {b"etag": conditions.format_etag(result.etag).encode("latin-1")}
        for alg, value in result.checksums.items():
            headers[f"x-amz-checksum-{alg.lower()}".encode("latin-1")] = value.encode("latin-1")
        self._send(call, headers=headers)

    async def _upload_part_copy(self, call: _Call) -> None:
        assert call.backend is not None
        number = _part_number(call.query.get("partNumber", ""))
        upload_id = self._upload_id(call)
        source = self._copy_source(call)
        info = await self._check_copy_source(call, source)
        range_header = call.headers.get("x-amz-copy-source-range")
        if range_header is not None and info is not None:
            source = attrs.evolve(
                source, byte_range=ranges.parse_copy_source_range(range_header, info.size)
            )
        result = await self._keepalive(
            call, call.backend.upload_part_copy(call.bucket, call.key, upload_id, number, source)
        )
        headers = {}
        if source.version_id:
            headers[b"x-amz-copy-source-version-id"] = source.version_id.encode("latin-1")
        self._send(
            call,
            xml_output.copy_part_result(
                result.etag, result.last_modified or self._now(), result.checksums
            ),
            headers=headers,
        )

    async def _complete_multipart_upload(self, call: _Call) -> None:
        assert call.backend is not None
        from pachs3gw.s3 import xml_input

        upload_id = self._upload_id(call)
        data = await self._read_xml_body(call)
        parts = [
            CompletedPart(part_number=p.part_number, etag=p.etag, checksums=dict(p.checksums))
            for p in xml_input.parse_complete_multipart(data)
        ]
        result = await self._keepalive(
            call, call.backend.complete_multipart_upload(call.bucket, call.key, upload_id, parts)
        )
        host = call.headers.get("host", "localhost")
        scheme = "https" if call.request.isSecure() else "http"
        location = f"{scheme}://{host}{call.raw_path.decode('latin-1')}"
        headers = {}
        if result.version_id:
            headers[b"x-amz-version-id"] = result.version_id.encode("latin-1")
        self._send(
            call,
            xml_output.complete_multipart_upload_result(
                location, call.bucket, call.key, result.etag, result.checksums
            ),
            headers=headers,
        )

    async def _abort_multipart_upload(self, call: _Call) -> None:
        assert call.backend is not None
        await call.backend.abort_multipart_upload(call.bucket, call.key, self._upload_id(call))
        self._send(call, status=204)

    async def _list_parts(self, call: _Call) -> None:
        assert call.backend is not None
        upload_id = self._upload_id(call)
        marker_text = call.query.get("part-number-marker", "") or "0"
        if not marker_text.isdigit():
            raise errors.InvalidArgument(
                "Provided part-number-marker not an integer or within integer range",
                extra={"ArgumentName": "part-number-marker", "ArgumentValue": marker_text},
            )
        marker = int(marker_text)
        max_parts = self._max(call, "max-parts")
        enc = self._encoding_type(call)
        page = await call.backend.list_parts(call.bucket, call.key, upload_id, marker, max_parts)
        self._send(
            call,
            xml_output.list_parts_result(
                call.bucket,
                call.key,
                upload_id,
                page,
                part_number_marker=marker,
                max_parts=max_parts,
                encoding_type=enc,
            ),
        )

    async def _list_multipart_uploads(self, call: _Call) -> None:
        assert call.backend is not None
        q = call.query
        prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
        key_marker, upload_marker = q.get("key-marker", ""), q.get("upload-id-marker", "")
        max_uploads = self._max(call, "max-uploads")
        enc = self._encoding_type(call)
        page = await call.backend.list_multipart_uploads(
            call.bucket, prefix, delimiter, key_marker, upload_marker, max_uploads
        )
        self._send(
            call,
            xml_output.list_multipart_uploads_result(
                call.bucket,
                page,
                prefix=prefix,
                delimiter=delimiter,
                key_marker=key_marker,
                upload_id_marker=upload_marker,
                max_uploads=max_uploads,
                encoding_type=enc,
            ),
        )

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._reactor.seconds(), timezone.utc)


# Helpers ---------------------------------------------------------------------


def _metadata_from_headers(headers: Mapping[str, str]) -> ObjectMetadata:
    """The content headers and ``x-amz-meta-*`` of a PUT, as the backend stores them.

    ``aws-chunked`` is a transfer detail, not the object's encoding: it is
    stripped, and Content-Encoding dropped when nothing else is left.
    Values stay the latin-1 decoding of the bytes received, so whatever the
    client sent (raw UTF-8, RFC 2047) comes back byte for byte.
    """
    content: dict[str, str] = {}
    for name in _CONTENT_HEADERS:
        value = headers.get(name)
        if value is None:
            continue
        if name == "content-encoding":
            tokens = [
                t.strip() for t in value.split(",") if t.strip() and t.strip().lower() != "aws-chunked"
            ]
            if not tokens:
                continue
            value = ",".join(tokens)
        content[name] = value
    user = {
        name[len(_META_PREFIX) :]: value
        for name, value in headers.items()
        if name.startswith(_META_PREFIX) and len(name) > len(_META_PREFIX)
    }
    return ObjectMetadata(headers=content, user=user)


_XML_PROLOG = b'<?xml version="1.0" encoding="UTF-8"?>\n'


def _without_prolog(body: bytes) -> bytes:
    return body[len(_XML_PROLOG) :] if body.startswith(_XML_PROLOG) else body


def _parse_query(raw_query: bytes) -> dict[str, str]:
    """First value of each query parameter, decoded (``+`` is a space, as in forms)."""
    query: dict[str, str] = {}
    for segment in raw_query.split(b"&"):
        if not segment:
            continue
        name, _, value = segment.partition(b"=")
        try:
            query.setdefault(
                unquote_to_bytes(name.replace(b"+", b" ")).decode("utf-8"),
                unquote_to_bytes(value.replace(b"+", b" ")).decode("utf-8"),
            )
        except UnicodeDecodeError:
            raise errors.InvalidArgument("Query parameters must be UTF-8 when decoded.") from None
    return query


def _header_value(value: str) -> bytes:
    """Header bytes for a stored value: latin-1 round-trips what the client sent."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def _http_date(dt: datetime) -> bytes:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return email.utils.format_datetime(dt.astimezone(timezone.utc), usegmt=True).encode("ascii")


def _part_number(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_PART_NUMBER:
        raise errors.InvalidArgument(
            "Part number must be an integer between 1 and 10000, inclusive",
            extra={"ArgumentName": "partNumber", "ArgumentValue": text},
        )
    return int(text)


def _encode_token(marker: str) -> str:
    return base64.urlsafe_b64encode(marker.encode("utf-8")).decode("ascii")


def _decode_token(token: str) -> str:
    try:
        return base64.b64decode(token.encode("ascii"), altchars=b"-_", validate=True).decode(
            "utf-8"
        )
    except (binascii.Error, ValueError, UnicodeError):
        raise errors.InvalidArgument(
            "The continuation token provided is incorrect",
            extra={"ArgumentName": "continuation-token", "ArgumentValue": token},
        ) from None

