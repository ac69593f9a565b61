"""The S3 REST API as a twisted.web resource: HTTP ⇄ backend calls, nothing else.

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

This module is the entry point, authentication and error rendering; the
rest lives in private modules: ``_call`` (the parsed request), ``_routes``
(which handler serves a request), ``_base`` (what handlers share),
``_headers`` (metadata ⇄ headers) and the handler objects ``_bucket_ops``,
``_listing_ops``, ``_object_ops``, ``_multipart_ops``, ``_attributes_ops`` and
``_post_ops`` (browser form uploads, with ``post_policy``), each holding the
one :class:`~pachs3gw.s3._base.Responder` it answers through.

Threads: everything here runs on the reactor thread; bodies are iterated by
the backend (uploads) or :class:`~pachs3gw.s3.download.ObjectProducer`
(downloads) in the injected thread pool.
"""

from __future__ import annotations

import base64
import hashlib
import os
import random
from collections.abc import Callable, Coroutine
from datetime import datetime, timezone
from typing import Any
from twisted.internet.defer import CancelledError, Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET

from pachs3gw.s3 import conditions, errors, signing, xml_output
from pachs3gw.s3._attributes_ops import AttributesHandlers
from pachs3gw.s3._base import Responder, _without_prolog
from pachs3gw.s3._bucket_ops import BucketHandlers
from pachs3gw.s3._call import _Call, _parse_call, _ParsedRequest
from pachs3gw.s3._headers import _http_date
from pachs3gw.s3._listing_ops import ListingHandlers
from pachs3gw.s3._multipart_ops import MultipartHandlers
from pachs3gw.s3._object_ops import ObjectHandlers
from pachs3gw.s3._post_ops import PostHandlers
from pachs3gw.s3._routes import (
    SELF_AUTHENTICATING,
    UNSUPPORTED_SUBRESOURCES,
    Handlers,
    _Handler,
    _route,
)
from pachs3gw.s3.download import DownloadStopped
from pachs3gw.s3.http_interfaces import IS3Reactor, IS3Request
from pachs3gw.s3.interfaces import BodyAborted, IAuthenticator, IBackendFactory
from pachs3gw.s3.mount import S3Resource

__all__ = ["S3Server", "UNSUPPORTED_SUBRESOURCES"]

_log = Logger()


class _S3Entry(Resource):
    """Hands every request to :meth:`S3Server._handle`, and cancels it when the client goes.

    S3 routes from the raw request line (twisted.web's ``postpath`` and
    werkzeug's routing unquote ``%2F`` and merge ``//``; keys may contain
    anything), so a router in between has nothing to decide: Klein's
    routing, the Deferreds around it and the URL parsing it needs cost
    ~75 µs a request, a sixth of a 4 KiB GET's reactor time (py-spy,
    ``bench.s3layer`` under wrk).  Klein serves the gateway's own
    endpoints instead (``pachs3gw/health.py``).
    """

    isLeaf = True

    def __init__(self, handle: Callable[[IS3Request], Coroutine[Any, Any, None]]) -> None:
        super().__init__()
        self._handle = handle

    def render(self, request: IS3Request) -> object:
        request.prepath = []
        request.postpath = []
        d = Deferred.fromCoroutine(self._handle(request))
        if not d.called:
            # The handler learns of a disconnect as a CancelledError.
            request.when_disconnected().addCallback(
                lambda _: d.cancel() if request.disconnected else None
            )
        d.addErrback(self._unexpected, request)
        return NOT_DONE_YET

    @staticmethod
    def _unexpected(failure: Failure, request: IS3Request) -> None:
        # _handle answers every error itself; this is the last resort.
        _log.failure("S3 request handling failed", failure=failure)
        if not request.finished and not request.disconnected:
            request.abort_connection()


#: Request IDs need to be unique, not secret: os.urandom costs ~100 µs a
#: call on this VM (two per request), a seeded PRNG ~1 µs.
_ids = random.Random(os.urandom(32))


def _request_ids() -> tuple[str, str]:
    """``x-amz-request-id`` (16 hex digits) and ``x-amz-id-2`` (32 base64 characters)."""
    return "%016X" % _ids.getrandbits(64), base64.b64encode(
        _ids.getrandbits(192).to_bytes(24, "big")
    ).decode("ascii")


class S3Server:
    """The S3 API over an :class:`IBackendFactory`, as a twisted.web resource.

    Entry point, authentication and error rendering; the operations are
    the handler objects in :attr:`handlers`, all answering through one
    :class:`~pachs3gw.s3._base.Responder`.

    :param reactor: the reactor (``callFromThread``, ``seconds``, ``callLater``).
    :param pool: the thread pool bodies are iterated in (the gateway's own,
        not the reactor's).
    :param backends: gives the backend acting for an access key.
    :param authenticator: whether and how signatures are checked.
    :param region: what GetBucketLocation and the signing scope use.
    """

    _log = Logger()

    def __init__(
        self,
        reactor: IS3Reactor,
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
        self._reply = Responder(reactor, pool)
        self.handlers = Handlers(
            buckets=BucketHandlers(self._reply, authenticator, region),
            listings=ListingHandlers(self._reply),
            objects=ObjectHandlers(self._reply),
            multipart=MultipartHandlers(self._reply),
            attributes=AttributesHandlers(self._reply),
            forms=PostHandlers(self._reply, authenticator, backends),
        )

    @property
    def keepalive_after(self) -> float:
        """Seconds a CompleteMultipartUpload or copy may take before its 200 goes out
        and whitespace every :attr:`keepalive_interval` seconds keeps the client
        reading (as S3 does: SDKs would otherwise time out)."""
        return self._reply.keepalive_after

    @keepalive_after.setter
    def keepalive_after(self, seconds: float) -> None:
        self._reply.keepalive_after = seconds

    @property
    def keepalive_interval(self) -> float:
        return self._reply.keepalive_interval

    @keepalive_interval.setter
    def keepalive_interval(self, seconds: float) -> None:
        self._reply.keepalive_interval = seconds

    def resource(self) -> IResource:
        """The twisted.web resource; serve it with :func:`pachs3gw.s3.site.make_site`."""
        return S3Resource(_S3Entry(self._handle), self._reactor)

    # Entry point ---------------------------------------------------------------

    async def _handle(self, request: IS3Request) -> None:
        request_id, host_id = _request_ids()
        stats = request.stats
        stats.request_id = request_id
        request.setHeader(b"x-amz-request-id", request_id.encode("ascii"))
        request.setHeader(b"x-amz-id-2", host_id.encode("ascii"))
        request.setHeader(b"server", b"pachs3gw")
        call: _ParsedRequest | None = None
        try:
            call = self._parse_call(request, request_id)
            stats.bucket = call.bucket
            stats.key = call.key
            handler = self._route(call)
            stats.operation = handler.__name__
            if handler.__name__ in SELF_AUTHENTICATING:
                call = call.authenticated(self._backends.backend_for(None))
            else:
                call = await self._authenticate(call)
            await handler(call)
        except conditions.NotModified as e:
            self._render_not_modified(request, e)
        except BaseException as e:
            error = Responder.body_error(request) or e
            if request.disconnected:
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
                if request.disconnected or not request.finished:
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

    # Parsing and routing -------------------------------------------------------

    def _parse_call(self, request: IS3Request, request_id: str) -> _ParsedRequest:
        return _parse_call(request, request_id)

    def _route(self, call: _ParsedRequest) -> _Handler:
        """Pick the operation from the method, the path level and the sub-resources."""
        return _route(self.handlers, call)

    # Authentication ------------------------------------------------------------

    async def _authenticate(self, call: _ParsedRequest) -> _Call:
        """Check the signature (auth on): the call with the caller's backend."""
        if not self._auth.enabled:
            return call.authenticated(self._backends.backend_for(None))
        signed = signing.SignedRequest(
            method=call.method,
            raw_path=call.raw_path,
            raw_query=call.raw_query,
            headers=call.header_lists,
            now=datetime.fromtimestamp(self._reactor.seconds(), timezone.utc),
        )
        creds = signing.parse_credentials(signed)
        if creds is None:
            # Refused if callers must sign; but with the backend down that
            # is not known, and a 403 would send the user the wrong way.
            await self._auth.check_anonymous()
            return call.authenticated(self._backends.backend_for(None))
        # With Pachyderm auth the access key is a token: log a digest.
        call.request.stats.access_key = (
            "sha256:" + hashlib.sha256(creds.access_key.encode()).hexdigest()[:12]
        )
        secret = await self._auth.secret_for(creds.access_key)
        if not self._auth.enabled:
            # Asking for the secret taught the authenticator that the backend
            # has no auth after all (it may have been unreachable at start-up).
            return call.authenticated(self._backends.backend_for(None))
        chunk_verifier = signing.verify(signed, creds, secret)
        return call.authenticated(self._backends.backend_for(creds.access_key), chunk_verifier)

    # Errors --------------------------------------------------------------------

    def _render_error(
        self,
        request: IS3Request,
        call: _ParsedRequest | None,
        error: errors.S3Error,
        request_id: str,
        host_id: str,
    ) -> None:
        request.stats.error_code = error.code
        if request.finished:
            return
        resource = error.resource or (call.resource if call is not None else "/")
        body = xml_output.error(
            error.code, error.message, resource, request_id, error.extra, host_id=host_id
        )
        if request.startedWriting:
            if isinstance(call, _Call) and call.keepalive:
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
        for header, value in error.headers.items():
            request.setHeader(header.encode("latin-1"), value.encode("latin-1"))
        request.setHeader(b"content-type", b"application/xml")
        request.setHeader(b"content-length", b"%d" % len(body))
        if request.method != b"HEAD":
            request.write(body)
        request.finish()

    def _render_not_modified(self, request: IS3Request, e: conditions.NotModified) -> None:
        request.setResponseCode(304)
        request.setHeader(b"etag", e.etag.encode("latin-1"))
        request.setHeader(b"last-modified", _http_date(e.last_modified))
        request.finish()
