"""Multipart uploads: create, upload (and copy) parts, complete, abort, list."""

from __future__ import annotations

import attrs

from pachs3gw.s3 import conditions, errors, ranges, xml_output
from pachs3gw.s3._base import Responder
from pachs3gw.s3._call import _Call, _copy_source, _encoding_type, _max, _part_number, _upload_id
from pachs3gw.s3._headers import _metadata_from_headers
from pachs3gw.s3.checksums import ALGORITHMS
from pachs3gw.s3.limits import check_upload_size


def _checksum_algorithm(call: _Call) -> str | None:
    """CreateMultipartUpload's ``x-amz-checksum-algorithm``, checked (None if absent).

    Only composite checksums (a checksum of the parts' checksums) are kept:
    a full-object CRC of a multipart upload is refused up front rather than
    silently not checked.
    """
    value = call.headers.get("x-amz-checksum-algorithm", "").strip().upper()
    kind = call.headers.get("x-amz-checksum-type", "").strip().upper()
    if not value:
        if kind:
            raise errors.InvalidRequest(
                "x-amz-checksum-type requires x-amz-checksum-algorithm."
            )
        return None
    if value not in ALGORITHMS:
        raise errors.InvalidRequest(
            "Checksum algorithm provided is unsupported. Please try again with any of the "
            "valid types: " + ", ".join(sorted(ALGORITHMS)),
            extra={"ArgumentName": "x-amz-checksum-algorithm", "ArgumentValue": value},
        )
    if kind not in ("", "COMPOSITE"):
        raise errors.NotImplemented_(
            f"Checksum type {kind} is not implemented for multipart uploads by this gateway; "
            "COMPOSITE (a checksum of the parts' checksums) is.",
        )
    return value


class MultipartHandlers:
    """The handlers of ``?uploads`` and ``?uploadId=`` (reactor thread only).

    Complete and part copies may be slow: they answer through
    :meth:`~pachs3gw.s3._base.Responder.keepalive`.
    """

    def __init__(self, reply: Responder) -> None:
        self._reply = reply

    async def create_multipart_upload(self, call: _Call) -> None:
        metadata = _metadata_from_headers(call.headers)
        algorithm = _checksum_algorithm(call)
        upload_id = await call.backend.create_multipart_upload(
            call.bucket, call.key, metadata, algorithm
        )
        headers = {}
        if algorithm is not None:
            headers[b"x-amz-checksum-algorithm"] = algorithm.encode("ascii")
            headers[b"x-amz-checksum-type"] = b"COMPOSITE"
        self._reply.send(
            call,
            xml_output.initiate_multipart_upload_result(call.bucket, call.key, upload_id),
            headers=headers,
        )

    async def upload_part(self, call: _Call) -> None:
        number = _part_number(call.query.get("partNumber", ""))
        upload_id = _upload_id(call)
        check_upload_size(call.headers)
        body = self._reply.prepare_body(call)
        result = await self._reply.with_body(
            call, call.backend.upload_part(call.bucket, call.key, upload_id, number, body)
        )
        headers = {b"etag": conditions.format_etag(result.etag).encode("latin-1")}
        for alg, value in result.checksums.items():
            headers[f"x-amz-checksum-{alg.lower()}".encode("latin-1")] = value.encode("latin-1")
        self._reply.send(call, headers=headers)

    async def upload_part_copy(self, call: _Call) -> None:
        number = _part_number(call.query.get("partNumber", ""))
        upload_id = _upload_id(call)
        source = _copy_source(call)
        info = await self._reply.check_copy_source(call, source)
        range_header = call.headers.get("x-amz-copy-source-range")
        if range_header is not None and info is not None:
            source = attrs.evolve(
                source, byte_range=ranges.parse_copy_source_range(range_header, info.size)
            )
        result = await self._reply.keepalive(
            call, call.backend.upload_part_copy(call.bucket, call.key, upload_id, number, source)
        )
        headers = {}
        if source.version_id:
            headers[b"x-amz-copy-source-version-id"] = source.version_id.encode("latin-1")
        self._reply.send(
            call,
            xml_output.copy_part_result(
                result.etag, result.last_modified or self._reply.now(), result.checksums
            ),
            headers=headers,
        )

    async def complete_multipart_upload(self, call: _Call) -> None:
        from pachs3gw.s3 import xml_input

        upload_id = _upload_id(call)
        data = await self._reply.read_xml_body(call)
        parts = xml_input.parse_complete_multipart(data)
        result = await self._reply.keepalive(
            call,
            call.backend.complete_multipart_upload(
                call.bucket, call.key, upload_id, parts,
                **conditions.write_conditions_kwargs(call.headers),
            ),
        )
        host = call.headers.get("host", "localhost")
        scheme = "https" if call.request.isSecure() else "http"
        location = f"{scheme}://{host}{call.raw_path.decode('latin-1')}"
        headers = {}
        if result.version_id:
            headers[b"x-amz-version-id"] = result.version_id.encode("latin-1")
        self._reply.send(
            call,
            xml_output.complete_multipart_upload_result(
                location, call.bucket, call.key, result.etag, result.checksums
            ),
            headers=headers,
        )

    async def abort_multipart_upload(self, call: _Call) -> None:
        await call.backend.abort_multipart_upload(call.bucket, call.key, _upload_id(call))
        self._reply.send(call, status=204)

    async def list_parts(self, call: _Call) -> None:
        upload_id = _upload_id(call)
        marker_text = call.query.get("part-number-marker", "") or "0"
        if not marker_text.isdigit():
            raise errors.InvalidArgument(
                "Provided part-number-marker not an integer or within integer range",
                extra={"ArgumentName": "part-number-marker", "ArgumentValue": marker_text},
            )
        marker = int(marker_text)
        max_parts = _max(call, "max-parts")
        enc = _encoding_type(call)
        page = await call.backend.list_parts(call.bucket, call.key, upload_id, marker, max_parts)
        self._reply.send(
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

    async def list_multipart_uploads(self, call: _Call) -> None:
        q = call.query
        prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
        key_marker, upload_marker = q.get("key-marker", ""), q.get("upload-id-marker", "")
        max_uploads = _max(call, "max-uploads")
        enc = _encoding_type(call)
        page = await call.backend.list_multipart_uploads(
            call.bucket, prefix, delimiter, key_marker, upload_marker, max_uploads
        )
        self._reply.send(
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
