"""The parsed request (:class:`_Call`) and what is read from its raw line and query.

S3 keys may contain anything (``%2F``, ``//``, bytes that are not UTF-8),
so the bucket and key come from the raw request line, never from
twisted.web's unquoted ``postpath``.  The readers below turn a malformed
query parameter or header into the S3 error the client expects.

Threads: reactor thread only.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

import attrs

from pachs3gw.s3 import errors
from pachs3gw.s3.http_interfaces import IS3Request
from pachs3gw.s3.interfaces import CopySource, IBackend
from pachs3gw.s3.limits import MAX_KEYS, MAX_PART_NUMBER
from pachs3gw.s3.signing import ChunkSignatureVerifier



@attrs.define
class _ParsedRequest:
    """What the request line and headers say, before anyone is authenticated.

    Routing needs only this; the handlers get a :class:`_Call`.
    """

    request: IS3Request
    method: str
    raw_path: bytes
    raw_query: bytes
    bucket: str
    key: str
    #: First value of each query parameter (decoded).
    query: dict[str, str]
    #: Lowercase header name → values joined with ``,`` (latin-1 decoded).
    headers: dict[str, str]
    #: Lowercase header name → each value (latin-1 decoded), as signatures read them.
    header_lists: dict[str, list[str]]
    request_id: str

    @property
    def resource(self) -> str:
        if not self.bucket:
            return "/"
        return f"/{self.bucket}/{self.key}" if self.key else f"/{self.bucket}"

    def has(self, name: str) -> bool:
        return name in self.query

    def authenticated(
        self, backend: IBackend, chunk_verifier: ChunkSignatureVerifier | None = None
    ) -> _Call:
        """The call a handler serves, once the caller's backend is known."""
        return _Call(
            self.request,
            self.method,
            self.raw_path,
            self.raw_query,
            self.bucket,
            self.key,
            self.query,
            self.headers,
            self.header_lists,
            self.request_id,
            backend,
            chunk_verifier,
        )


@attrs.define
class _Call(_ParsedRequest):
    """One authenticated S3 request as the handlers see it (reactor thread only)."""

    #: The backend acting for the caller.
    backend: IBackend
    #: Checks the chunk signatures of a signed streaming (aws-chunked) body.
    chunk_verifier: ChunkSignatureVerifier | None = None
    #: A 200 is already out with whitespace keeping the client waiting;
    #: the result (or the error) follows as its body.
    keepalive: bool = False


def _parse_call(request: IS3Request, request_id: str) -> _ParsedRequest:
    """Bucket, key and query from the raw request line; headers joined by name."""
    uri: bytes = request.uri
    raw_path, _, raw_query = uri.partition(b"?")
    if not raw_path.startswith(b"/"):
        # Absolute form (``http://host/path``), as proxies send it.
        scheme, sep, rest = raw_path.partition(b"://")
        if not sep:
            raise errors.InvalidURI()
        raw_path = b"/" + rest.partition(b"/")[2]
    # Mounted below a site's root (``/s3``, see ``mount.py``): route on what
    # follows the mount point; signatures cover the whole path.
    mount: bytes = request.s3_mount
    routed = raw_path
    if mount and (raw_path == mount or raw_path.startswith(mount + b"/")):
        routed = raw_path[len(mount):]
    bucket_raw, _, key_raw = routed[1:].partition(b"/")
    try:
        bucket = (unquote_to_bytes(bucket_raw) if b"%" in bucket_raw else bucket_raw).decode("utf-8")
        key = (unquote_to_bytes(key_raw) if b"%" in key_raw else key_raw).decode("utf-8")
    except UnicodeDecodeError:
        raise errors.InvalidURI("Couldn't parse the specified URI: keys are UTF-8.") from None
    query = _parse_query(raw_query)
    headers: dict[str, str] = {}
    header_lists: dict[str, list[str]] = {}
    for raw_name, raw_values in request.requestHeaders.getAllRawHeaders():
        name = raw_name.decode("latin-1").lower()
        values = [v.decode("latin-1") for v in raw_values]
        if name in header_lists:  # the same name in two spellings
            values = header_lists[name] + values
        header_lists[name] = values
        headers[name] = values[0] if len(values) == 1 else ",".join(values)
    return _ParsedRequest(
        request=request,
        method=request.method.decode("latin-1"),
        raw_path=raw_path,
        raw_query=raw_query,
        bucket=bucket,
        key=key,
        query=query,
        headers=headers,
        header_lists=header_lists,
        request_id=request_id,
    )


def _unquote_plus(raw: bytes) -> str:
    """A query name or value decoded (``+`` is a space); most have nothing to decode."""
    if b"%" in raw or b"+" in raw:
        raw = unquote_to_bytes(raw.replace(b"+", b" "))
    return raw.decode("utf-8")


def _parse_query(raw_query: bytes) -> dict[str, str]:
    """First value of each query parameter, decoded (``+`` is a space, as in forms)."""
    query: dict[str, str] = {}
    if not raw_query:
        return query
    for segment in raw_query.split(b"&"):
        if not segment:
            continue
        name, _, value = segment.partition(b"=")
        try:
            query.setdefault(_unquote_plus(name), _unquote_plus(value))
        except UnicodeDecodeError:
            raise errors.InvalidArgument("Query parameters must be UTF-8 when decoded.") from None
    return query


def _part_number(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_PART_NUMBER:
        raise errors.InvalidArgument(
            "Part number must be an integer between 1 and 10000, inclusive",
            extra={"ArgumentName": "partNumber", "ArgumentValue": text},
        )
    return int(text)


def _upload_id(call: _Call) -> str:
    upload_id = call.query.get("uploadId", "")
    if not upload_id:
        raise errors.NoSuchUpload()
    return upload_id


def _max(call: _Call, name: str, default: int = MAX_KEYS) -> int:
    value = call.query.get(name)
    if value is None or value == "":
        return default
    if not value.isascii() or not value.lstrip("-").isdigit() or int(value) < 0:
        raise errors.InvalidArgument(
            f"Provided {name} not an integer or within integer range",
            extra={"ArgumentName": name, "ArgumentValue": value},
        )
    return min(int(value), default)


def _encoding_type(call: _Call) -> str | None:
    enc = call.query.get("encoding-type")
    if enc is None or enc == "":
        return None
    if enc.lower() != "url":
        raise errors.InvalidArgument(
            "Invalid Encoding Method specified in Request",
            extra={"ArgumentName": "encoding-type", "ArgumentValue": enc},
        )
    return "url"


def _copy_source(call: _Call) -> CopySource:
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
