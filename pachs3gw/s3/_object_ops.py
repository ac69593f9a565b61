"""Object operations: Put/Get/Head/Delete, DeleteObjects, CopyObject, object ACL."""

from __future__ import annotations

from twisted.internet.defer import CancelledError
from twisted.logger import Logger
from twisted.python.failure import Failure

from pachs3gw.s3 import conditions, errors, ranges, xml_output
from pachs3gw.s3._base import Responder
from pachs3gw.s3._call import _Call, _copy_source, _part_number
from pachs3gw.s3._headers import _META_PREFIX, _header_value, _http_date, _metadata_from_headers
from pachs3gw.s3.download import SMALL_READ_BYTES, DownloadStopped, ObjectProducer
from pachs3gw.s3.interfaces import DEFAULT_CONTENT_TYPE, ObjectInfo
from pachs3gw.s3.limits import check_upload_size

#: ``response-*`` query parameters of GetObject → the header they override.
_RESPONSE_OVERRIDES = {
    "response-content-type": b"Content-Type",
    "response-content-language": b"Content-Language",
    "response-expires": b"Expires",
    "response-cache-control": b"Cache-Control",
    "response-content-disposition": b"Content-Disposition",
    "response-content-encoding": b"Content-Encoding",
}


class ObjectHandlers:
    """The handlers of ``/{bucket}/{key}`` outside multipart uploads (reactor thread only).

    GET streams the object with an :class:`~pachs3gw.s3.download.ObjectProducer`,
    whose reads run in the injected thread pool.
    """

    _log = Logger()

    def __init__(self, reply: Responder) -> None:
        self._reply = reply

    async def put_object(self, call: _Call) -> None:
        check_upload_size(call.headers)
        metadata = _metadata_from_headers(call.headers)
        body = self._reply.prepare_body(call)
        result = await self._reply.with_body(
            call,
            call.backend.put_object(
                call.bucket, call.key, body, metadata,
                **conditions.write_conditions_kwargs(call.headers),
            ),
        )
        headers = {b"etag": conditions.format_etag(result.etag).encode("latin-1")}
        if result.version_id:
            headers[b"x-amz-version-id"] = result.version_id.encode("latin-1")
        for alg, value in result.checksums.items():
            headers[f"x-amz-checksum-{alg.lower()}".encode("latin-1")] = value.encode("latin-1")
        self._reply.send(call, headers=headers)

    def _object_headers(
        self, call: _Call, info: ObjectInfo, *, whole_object: bool
    ) -> dict[bytes, bytes]:
        headers: dict[bytes, bytes] = {
            b"etag": conditions.format_etag(info.etag).encode("latin-1"),
            b"last-modified": _http_date(info.last_modified),
            b"accept-ranges": b"bytes",
        }
        content = dict(info.metadata.headers)
        content.setdefault("content-type", DEFAULT_CONTENT_TYPE)
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
            headers[b"x-amz-checksum-type"] = xml_output.checksum_type(info.checksums).encode()
        if call.method == "GET":
            for param, header in _RESPONSE_OVERRIDES.items():
                if param in call.query:
                    # Query values were UTF-8 on the wire: send those bytes back.
                    headers[header.lower()] = call.query[param].encode("utf-8")
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

    async def head_object(self, call: _Call) -> None:
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

    async def get_object(self, call: _Call) -> None:
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
        if length <= SMALL_READ_BYTES:
            data = await reader.read_small(offset, length)
            if not request.disconnected:
                request.write(data)
                request.finish()
            return
        producer = ObjectProducer(self._reply.reactor, self._reply.pool, reader, request, offset, length)
        try:
            await producer.start()
        except BaseException as e:
            reader.cancel()
            if request.disconnected or isinstance(e, (DownloadStopped, CancelledError)):
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

    async def delete_object(self, call: _Call) -> None:
        result = await call.backend.delete_object(call.bucket, call.key, call.query.get("versionId"))
        if result.error is not None:
            raise result.error
        headers = {}
        if result.version_id:
            headers[b"x-amz-version-id"] = result.version_id.encode("latin-1")
        if result.delete_marker:
            headers[b"x-amz-delete-marker"] = b"true"
        self._reply.send(call, status=204, headers=headers)

    async def delete_objects(self, call: _Call) -> None:
        from pachs3gw.s3 import xml_input

        data = await self._reply.read_xml_body(call)
        parsed = xml_input.parse_delete(data)
        results = await call.backend.delete_objects(call.bucket, parsed.objects)
        deleted: list[tuple[str, str | None, bool]] = []
        failed: list[tuple[str, str | None, str, str]] = []
        for r in results:
            if r.error is None:
                if not parsed.quiet:
                    deleted.append((r.key, r.version_id, r.delete_marker))
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
        self._reply.send(call, xml_output.delete_result(deleted, failed))

    async def get_object_acl(self, call: _Call) -> None:
        await call.backend.head_object(call.bucket, call.key, call.query.get("versionId"))
        self._reply.send(call, xml_output.access_control_policy())

    # Copies --------------------------------------------------------------------

    async def copy_object(self, call: _Call) -> None:
        source = _copy_source(call)
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
            raise errors.copy_onto_itself()
        await self._reply.check_copy_source(call, source)
        metadata = _metadata_from_headers(call.headers) if directive == "REPLACE" else None
        result = await self._reply.keepalive(
            call,
            call.backend.copy_object(
                source, call.bucket, call.key, metadata,
                **conditions.write_conditions_kwargs(call.headers),
            ),
        )
        headers = {}
        if result.version_id:
            headers[b"x-amz-version-id"] = result.version_id.encode("latin-1")
        if source.version_id:
            headers[b"x-amz-copy-source-version-id"] = source.version_id.encode("latin-1")
        self._reply.send(
            call,
            xml_output.copy_object_result(
                result.etag, result.last_modified or self._reply.now(), result.checksums
            ),
            headers=headers,
        )
