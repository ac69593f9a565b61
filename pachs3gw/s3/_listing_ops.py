"""Object listings: ListObjects (v1 and v2) and ListObjectVersions.

A v2 continuation token is the v1 marker in URL-safe base64: the backend
pages by key either way.  (Listings of uploads and parts are in
:mod:`pachs3gw.s3._multipart_ops`.)
"""

from __future__ import annotations

import base64
import binascii

from pachs3gw.s3 import errors, xml_output
from pachs3gw.s3._base import Responder
from pachs3gw.s3._call import _Call, _encoding_type, _max


class ListingHandlers:
    """The handlers of ``GET /{bucket}`` listings (reactor thread only)."""

    def __init__(self, reply: Responder) -> None:
        self._reply = reply

    async def list_objects_v1(self, call: _Call) -> None:
        q = call.query
        prefix, delimiter, marker = q.get("prefix", ""), q.get("delimiter", ""), q.get("marker", "")
        max_keys = _max(call, "max-keys")
        enc = _encoding_type(call)
        page = await call.backend.list_objects(call.bucket, prefix, delimiter, marker, max_keys)
        self._reply.send(
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

    async def list_objects_v2(self, call: _Call) -> None:
        q = call.query
        prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
        max_keys = _max(call, "max-keys")
        enc = _encoding_type(call)
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
        self._reply.send(
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

    async def list_object_versions(self, call: _Call) -> None:
        q = call.query
        prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
        key_marker, vid_marker = q.get("key-marker", ""), q.get("version-id-marker", "")
        if vid_marker and not key_marker:
            raise errors.InvalidArgument(
                "A version-id marker cannot be specified without a key marker.",
                extra={"ArgumentName": "version-id-marker", "ArgumentValue": vid_marker},
            )
        max_keys = _max(call, "max-keys")
        enc = _encoding_type(call)
        page = await call.backend.list_object_versions(
            call.bucket, prefix, delimiter, key_marker, vid_marker, max_keys
        )
        self._reply.send(
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


def _encode_token(marker: str) -> str:
    return base64.urlsafe_b64encode(marker.encode("utf-8")).decode("ascii")


def _decode_token(token: str, name: str = "continuation-token") -> str:
    try:
        return base64.b64decode(token.encode("ascii"), altchars=b"-_", validate=True).decode(
            "utf-8"
        )
    except (binascii.Error, ValueError, UnicodeError):
        raise errors.InvalidArgument(
            "The continuation token provided is incorrect",
            extra={"ArgumentName": name, "ArgumentValue": token},
        ) from None
