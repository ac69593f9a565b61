"""POST Object: a browser form upload, streamed from the form into one PutObject.

The body is ``multipart/form-data``: fields (key, policy, signature,
content headers, ``x-amz-meta-*``...) then the ``file`` part, which S3
requires to be the last field that counts. It is parsed as it arrives with
the push parser of the ``multipart`` package: the fields before the file
are read (bounded, :data:`MAX_FIELDS_SIZE`), the policy and signature
checked (:mod:`pachs3gw.s3.post_policy`), and the file part then streams
into the backend's ``put_object`` as the body, never held whole. The
content-length-range is enforced while it streams: a file too large stops
the write and nothing is stored. Fields after the file are ignored.

The form carries its own credentials, so this handler authenticates the
request itself (``S3Server`` skips its header/query authentication for it).

Threads: the handler runs on the reactor thread; the form is parsed in the
injected thread pool (fields) and on the backend's body-reading thread (the
file), one after the other.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any
from datetime import datetime, timezone
from urllib.parse import quote, urlencode

import multipart
from twisted.internet.defer import Deferred, succeed
from twisted.internet.threads import deferToThreadPool
from zope.interface import implementer

from pachs3gw.s3 import conditions, errors, post_policy
from pachs3gw.s3._base import Responder
from pachs3gw.s3._call import _Call
from pachs3gw.s3._headers import _metadata_from_headers
from pachs3gw.s3.interfaces import IAuthenticator, IBackend, IBackendFactory, IBodySource
from pachs3gw.s3.xml_output import _document, _t

#: Bytes of form fields (all but the file) read before the file must start.
MAX_FIELDS_SIZE = 64 * 1024
_Event = Any  # a multipart.MultipartSegment, a piece of its body (bytes), or None at its end


def _events(raw: Iterator[bytes], boundary: str) -> Iterator[_Event]:
    """*Worker thread.* The form's parser events, MalformedPOSTRequest if it is not a form."""
    parser = multipart.PushMultipartParser(boundary, max_header_count=16)
    try:
        for chunk in raw:
            yield from parser.parse(chunk)
        yield from parser.parse(b"")
    except multipart.MultipartError:
        raise errors.MalformedPOSTRequest() from None


def _read_fields(events: Iterator[_Event]) -> tuple[dict[str, str], Any]:
    """*Worker thread.* The fields before the file part (names lower-cased), and the file's segment."""
    fields: dict[str, str] = {}
    current: Any = None
    buffer: list[bytes] = []
    total = 0
    for event in events:
        if isinstance(event, multipart.MultipartSegment):
            if event.name.lower() == "file":
                return fields, event
            current, buffer = event, []
        elif event is None:
            if current is not None:
                try:
                    fields.setdefault(current.name.lower(), b"".join(buffer).decode("utf-8"))
                except UnicodeDecodeError:
                    raise errors.MalformedPOSTRequest() from None
            current = None
        else:
            total += len(event)
            if total > MAX_FIELDS_SIZE:
                raise errors.MaxPostPreDataLengthExceeded(
                    "Your POST request fields preceding the upload file were too large."
                )
            buffer.append(event)
    return fields, None


@implementer(IBodySource)
class FormFileBody:
    """The file part of a form as an upload body, checked against the policy as it streams."""

    expected_length = None

    def __init__(self, events: Iterator[_Event], policy: post_policy.Policy | None) -> None:
        self._events = events
        self._policy = policy
        self._md5 = hashlib.md5()
        self._done = False
        self.size = 0

    def chunks(self) -> Iterator[bytes]:
        """*Worker thread.* The file's bytes; then the rest of the form is read and ignored."""
        for event in self._events:
            if event is None:
                break
            assert isinstance(event, bytes)
            self.size += len(event)
            post_policy.check_size(self._policy, self.size, final=False)
            self._md5.update(event)
            yield event
        post_policy.check_size(self._policy, self.size, final=True)
        for _ in self._events:
            pass  # fields after the file do not count (as on S3)
        self._done = True

    def md5_hex(self) -> str:
        if not self._done:
            raise RuntimeError("The file has not been read to its end.")
        return self._md5.hexdigest()

    def checksums(self) -> dict[str, str]:
        return {}

    def arrived(self) -> Deferred[bool]:
        """The file is read from the form as it streams: never waiting in memory."""
        return succeed(False)


def _post_response(location: str, bucket: str, key: str, etag: str) -> bytes:
    return _document(
        "PostResponse",
        [_t("Location", location), _t("Bucket", bucket), _t("Key", key), _t("ETag", etag)],
        namespace=False,
    )


class PostHandlers:
    """The handler of ``POST /{bucket}`` with a form (reactor thread only).

    The form carries its own signature, so this handler authenticates the
    request itself and picks the signer's backend (the call it is given
    holds the anonymous one).
    """

    def __init__(
        self, reply: Responder, auth: IAuthenticator, backends: IBackendFactory
    ) -> None:
        self._reply = reply
        self._auth = auth
        self._backends = backends

    async def post_object(self, call: _Call) -> None:
        mime, options = multipart.parse_options_header(call.headers.get("content-type", ""))
        boundary = options.get("boundary", "")
        if mime.lower() != "multipart/form-data" or not boundary:
            raise errors.PreconditionFailed(
                "Bucket POST must be of the enclosure-type multipart/form-data",
                extra={"Condition": "Bucket POST must be of the enclosure-type multipart/form-data"},
            )
        raw = self._reply.prepare_body(call)
        events = _events(raw.chunks(), boundary)
        fields, file = await self._reply.with_body(
            call, deferToThreadPool(self._reply.reactor, self._reply.pool, _read_fields, events)
        )
        if file is None:
            raise errors.InvalidArgument(
                "POST requires exactly one file upload per request.",
                extra={"ArgumentName": "file", "ArgumentValue": "0"},
            )
        if "key" not in fields:
            raise errors.InvalidArgument(
                "Bucket POST must contain a field named 'key'.  If it is specified, please "
                "check the order of the fields.",
                extra={"ArgumentName": "key", "ArgumentValue": ""},
            )
        key = fields["key"].replace("${filename}", file.filename or "")
        if not key:
            raise errors.InvalidArgument("User key must have a length greater than 0.")
        checked = dict(fields, key=key)
        backend, policy = await self._check_form(call, checked)
        headers = {
            name: value
            for name, value in checked.items()
            if name.startswith("x-amz-meta-")
            or name in ("content-type", "content-encoding", "content-disposition",
                        "content-language", "cache-control", "expires")
        }
        if "content-type" not in headers and file.content_type:
            headers["content-type"] = file.content_type
        body = FormFileBody(events, policy)
        result = await self._reply.with_body(
            call, backend.put_object(call.bucket, key, body, _metadata_from_headers(headers))
        )
        etag = conditions.format_etag(result.etag)
        host = call.headers.get("host", "localhost")
        scheme = "https" if call.request.isSecure() else "http"
        location = f"{scheme}://{host}/{quote(call.bucket)}/{quote(key)}"
        out = {b"etag": etag.encode("latin-1"), b"location": location.encode("latin-1")}
        if result.version_id:
            out[b"x-amz-version-id"] = result.version_id.encode("latin-1")
        redirect = checked.get("success_action_redirect") or checked.get("redirect")
        if redirect:
            sep = "&" if "?" in redirect else "?"
            query = urlencode({"bucket": call.bucket, "key": key, "etag": etag})
            out[b"location"] = f"{redirect}{sep}{query}".encode("latin-1", "replace")
            self._reply.send(call, status=303, headers=out)
            return
        status = checked.get("success_action_status", "")
        if status == "201":
            self._reply.send(call, _post_response(location, call.bucket, key, etag), status=201, headers=out)
        elif status == "200":
            self._reply.send(call, status=200, headers=out)
        else:
            self._reply.send(call, status=204, headers=out)

    async def _check_form(
        self, call: _Call, fields: dict[str, str]
    ) -> tuple[IBackend, post_policy.Policy | None]:
        """Check signature and policy: the signer's backend, and the policy if any."""
        now = datetime.fromtimestamp(self._reply.reactor.seconds(), timezone.utc)
        policy_b64 = fields.get("policy", "")
        policy = post_policy.decode_policy(policy_b64) if policy_b64 else None
        signature = post_policy.form_signature(fields)
        if self._auth.enabled:
            if policy is None or signature is None:
                raise errors.AccessDenied(
                    "Bucket POST must contain a policy and a signature (anonymous form uploads "
                    "are not allowed when authentication is on)."
                )
            secret = await self._auth.secret_for(signature.access_key)
            post_policy.check_signature(signature, policy_b64, secret)
            backend = self._backends.backend_for(signature.access_key)
        else:
            backend = call.backend
        if policy is not None:
            post_policy.check_conditions(policy, fields, call.bucket, now)
        return backend, policy
