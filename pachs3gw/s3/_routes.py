"""Which handler serves which request: method, path level and sub-resources.

A handler is a bound method of the :class:`~pachs3gw.s3.app.S3Server`;
its ``__name__``, less the underscore, is the operation in the access log.

Threads: reactor thread only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from pachs3gw.s3 import errors
from pachs3gw.s3._call import _Call

if TYPE_CHECKING:
    from pachs3gw.s3.app import S3Server

_Handler = Callable[[_Call], Awaitable[None]]

#: Sub-resources of features PFS has no equivalent for: 501 NotImplemented.
UNSUPPORTED_SUBRESOURCES = frozenset(
    {
        "accelerate",
        "analytics",
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
MAX_KEY_BYTES = 1024
#: Handlers that authenticate the request themselves (a form carries its own signature).
SELF_AUTHENTICATING = frozenset({"_post_object"})


def _route(ops: S3Server, call: _Call) -> _Handler:
    """Pick the operation from the method, the path level and the sub-resources."""
    m = call.method
    if m not in ("GET", "HEAD", "PUT", "POST", "DELETE"):
        raise errors.MethodNotAllowed()
    if not call.bucket:
        if m in ("GET", "HEAD"):
            return ops._list_buckets
        raise errors.MethodNotAllowed()
    unsupported = sorted(UNSUPPORTED_SUBRESOURCES.intersection(call.query))
    if unsupported:
        raise errors.NotImplemented_(
            f"The {unsupported[0]} sub-resource is not implemented by this gateway."
        )
    if not call.key:
        return _route_bucket(ops, call)
    if len(call.key.encode("utf-8")) > MAX_KEY_BYTES and m in ("PUT", "POST"):
        raise errors.KeyTooLongError()
    return _route_object(ops, call)


def _route_bucket(ops: S3Server, call: _Call) -> _Handler:
    m = call.method
    if m in ("GET", "HEAD") and call.has("acl"):
        return ops._get_bucket_acl
    if call.has("acl"):
        raise errors.NotImplemented_("ACLs are not implemented by this gateway.")
    if m == "GET":
        if call.has("location"):
            return ops._get_bucket_location
        if call.has("versioning"):
            return ops._get_bucket_versioning
        if call.has("versions"):
            return ops._list_object_versions
        if call.has("uploads"):
            return ops._list_multipart_uploads
        if call.query.get("list-type") == "2":
            return ops._list_objects_v2
        return ops._list_objects_v1
    if m == "HEAD":
        return ops._head_bucket
    if m == "PUT":
        if call.has("versioning"):
            return ops._put_bucket_versioning
        return ops._create_bucket
    if m == "DELETE":
        return ops._delete_bucket
    # POST
    if call.has("delete"):
        return ops._delete_objects
    return ops._post_object


def _route_object(ops: S3Server, call: _Call) -> _Handler:
    m = call.method
    if m in ("GET", "HEAD") and call.has("acl"):
        return ops._get_object_acl
    if call.has("acl"):
        raise errors.NotImplemented_("ACLs are not implemented by this gateway.")
    if m == "GET":
        if call.has("uploadId"):
            return ops._list_parts
        if call.has("attributes"):
            return ops._get_object_attributes
        return ops._get_object
    if m == "HEAD":
        return ops._head_object
    if m == "PUT":
        if call.has("uploadId") or call.has("partNumber"):
            if "x-amz-copy-source" in call.headers:
                return ops._upload_part_copy
            return ops._upload_part
        if "x-amz-copy-source" in call.headers:
            return ops._copy_object
        return ops._put_object
    if m == "DELETE":
        if call.has("uploadId"):
            return ops._abort_multipart_upload
        return ops._delete_object
    # POST
    if call.has("uploads"):
        return ops._create_multipart_upload
    if call.has("uploadId"):
        return ops._complete_multipart_upload
    raise errors.MethodNotAllowed()
