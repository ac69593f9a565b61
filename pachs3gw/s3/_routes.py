"""Which handler serves which request: method, path level and sub-resources.

A handler is a bound method of one of the handler objects that
:class:`Handlers` holds; its ``__name__`` is the operation in the access log.

Threads: reactor thread only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import attrs

from pachs3gw.s3 import errors
from pachs3gw.s3._attributes_ops import AttributesHandlers
from pachs3gw.s3._bucket_ops import BucketHandlers
from pachs3gw.s3._call import _Call, _ParsedRequest
from pachs3gw.s3._listing_ops import ListingHandlers
from pachs3gw.s3._multipart_ops import MultipartHandlers
from pachs3gw.s3._object_ops import ObjectHandlers
from pachs3gw.s3._post_ops import PostHandlers
from pachs3gw.s3.limits import MAX_KEY_BYTES

_Handler = Callable[[_Call], Awaitable[None]]


@attrs.frozen
class Handlers:
    """Every operation's handler, grouped by what they serve."""

    buckets: BucketHandlers
    listings: ListingHandlers
    objects: ObjectHandlers
    multipart: MultipartHandlers
    attributes: AttributesHandlers
    forms: PostHandlers

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
#: Handlers that authenticate the request themselves (a form carries its own signature).
SELF_AUTHENTICATING = frozenset({"post_object"})


def _route(ops: Handlers, call: _ParsedRequest) -> _Handler:
    """Pick the operation from the method, the path level and the sub-resources."""
    m = call.method
    if m not in ("GET", "HEAD", "PUT", "POST", "DELETE"):
        raise errors.MethodNotAllowed()
    if not call.bucket:
        if m in ("GET", "HEAD"):
            return ops.buckets.list_buckets
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


def _route_bucket(ops: Handlers, call: _ParsedRequest) -> _Handler:
    m = call.method
    if m in ("GET", "HEAD") and call.has("acl"):
        return ops.buckets.get_bucket_acl
    if call.has("acl"):
        raise errors.NotImplemented_("ACLs are not implemented by this gateway.")
    if m == "GET":
        if call.has("location"):
            return ops.buckets.get_bucket_location
        if call.has("versioning"):
            return ops.buckets.get_bucket_versioning
        if call.has("versions"):
            return ops.listings.list_object_versions
        if call.has("uploads"):
            return ops.multipart.list_multipart_uploads
        if call.query.get("list-type") == "2":
            return ops.listings.list_objects_v2
        return ops.listings.list_objects_v1
    if m == "HEAD":
        return ops.buckets.head_bucket
    if m == "PUT":
        if call.has("versioning"):
            return ops.buckets.put_bucket_versioning
        return ops.buckets.create_bucket
    if m == "DELETE":
        return ops.buckets.delete_bucket
    # POST
    if call.has("delete"):
        return ops.objects.delete_objects
    return ops.forms.post_object


def _route_object(ops: Handlers, call: _ParsedRequest) -> _Handler:
    m = call.method
    if m in ("GET", "HEAD") and call.has("acl"):
        return ops.objects.get_object_acl
    if call.has("acl"):
        raise errors.NotImplemented_("ACLs are not implemented by this gateway.")
    if m == "GET":
        if call.has("uploadId"):
            return ops.multipart.list_parts
        if call.has("attributes"):
            return ops.attributes.get_object_attributes
        return ops.objects.get_object
    if m == "HEAD":
        return ops.objects.head_object
    if m == "PUT":
        if call.has("uploadId") or call.has("partNumber"):
            if "x-amz-copy-source" in call.headers:
                return ops.multipart.upload_part_copy
            return ops.multipart.upload_part
        if "x-amz-copy-source" in call.headers:
            return ops.objects.copy_object
        return ops.objects.put_object
    if m == "DELETE":
        if call.has("uploadId"):
            return ops.multipart.abort_multipart_upload
        return ops.objects.delete_object
    # POST
    if call.has("uploads"):
        return ops.multipart.create_multipart_upload
    if call.has("uploadId"):
        return ops.multipart.complete_multipart_upload
    raise errors.MethodNotAllowed()
