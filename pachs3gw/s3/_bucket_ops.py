"""Service and bucket operations: ListBuckets, Create/Delete/Head, location, versioning, ACL."""

from __future__ import annotations

import html

from pachs3gw.s3 import errors, xml_output
from pachs3gw.s3._base import Responder
from pachs3gw.s3._call import _Call, _max
from pachs3gw.s3._listing_ops import _decode_token, _encode_token
from pachs3gw.s3.interfaces import IAuthenticator
from pachs3gw.s3.limits import MAX_BUCKETS



class BucketHandlers:
    """The handlers of ``/`` and ``/{bucket}`` other than listings (reactor thread only).

    :param auth: only asked whether auth is on (a browser gets an HTML
        bucket list when it is off).
    :param region: what HeadBucket reports.
    """

    def __init__(self, reply: Responder, auth: IAuthenticator, region: str) -> None:
        self._reply = reply
        self._auth = auth
        self._region = region

    # Service -------------------------------------------------------------------

    async def list_buckets(self, call: _Call) -> None:
        q = call.query
        prefix = q.get("prefix", "")
        max_buckets = _max(call, "max-buckets", MAX_BUCKETS)
        if max_buckets < 1:
            raise errors.InvalidArgument(
                "max-buckets must be between 1 and 10000",
                extra={"ArgumentName": "max-buckets", "ArgumentValue": q["max-buckets"]},
            )
        token = q.get("continuation-token")
        after = _decode_token(token, "continuation-token") if token else ""
        buckets = [
            b
            for b in await call.backend.list_buckets()
            if b.name.startswith(prefix) and b.name > after
        ]
        next_token: str | None = None
        if ("max-buckets" in q or token) and len(buckets) > max_buckets:
            buckets = buckets[:max_buckets]
            next_token = _encode_token(buckets[-1].name) if buckets else None
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
            self._reply.send(call, page, content_type=b"text/html; charset=utf-8")
            return
        self._reply.send(
            call,
            xml_output.list_all_my_buckets(
                buckets, prefix=prefix if "prefix" in q else None, continuation_token=next_token
            ),
        )

    # Buckets -------------------------------------------------------------------

    async def create_bucket(self, call: _Call) -> None:
        if not call.request.body_complete or call.headers.get("content-length", "0") != "0":
            from pachs3gw.s3 import xml_input

            data = await self._reply.read_xml_body(call, required=False)
            xml_input.parse_create_bucket(data)
        await call.backend.create_bucket(call.bucket)
        self._reply.send(call, headers={b"location": b"/" + call.bucket.encode("utf-8")})

    async def delete_bucket(self, call: _Call) -> None:
        await call.backend.delete_bucket(call.bucket)
        self._reply.send(call, status=204)

    async def head_bucket(self, call: _Call) -> None:
        await call.backend.head_bucket(call.bucket)
        self._reply.send(call, headers={b"x-amz-bucket-region": self._region.encode("ascii")})

    async def get_bucket_location(self, call: _Call) -> None:
        region = await call.backend.get_bucket_location(call.bucket)
        self._reply.send(call, xml_output.location_constraint(region))

    async def get_bucket_versioning(self, call: _Call) -> None:
        status = await call.backend.get_bucket_versioning(call.bucket)
        self._reply.send(call, xml_output.versioning_configuration(status))

    async def put_bucket_versioning(self, call: _Call) -> None:
        """Enabled is what every bucket already is (each write is a commit): 200.

        Suspended would mean "overwrite in place", which PFS never does, so it
        is refused; MFA delete needs MFA devices, which the gateway has not.
        """
        from pachs3gw.s3 import xml_input

        data = await self._reply.read_xml_body(call)
        status, mfa = xml_input.parse_versioning(data)
        await call.backend.head_bucket(call.bucket)
        if status == "Suspended":
            raise errors.InvalidBucketState(
                "Versioning cannot be suspended on this gateway: every write to a bucket is a "
                "new PFS commit and earlier commits are kept, so every bucket is always "
                "versioned (Status stays Enabled).",
                extra={"BucketName": call.bucket},
            )
        if mfa == "Enabled":
            raise errors.NotImplemented_(
                "MFA delete is not implemented by this gateway.", extra={"BucketName": call.bucket}
            )
        self._reply.send(call)

    async def get_bucket_acl(self, call: _Call) -> None:
        await call.backend.head_bucket(call.bucket)
        self._reply.send(call, xml_output.access_control_policy())
