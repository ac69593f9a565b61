"""The seam between the S3 HTTP layer and whatever stores the objects.

Like Pachyderm's ``s2`` library (``BucketController`` / ``ObjectController``
/ ``MultipartController``), the HTTP layer parses and checks requests and
renders responses, and calls these interfaces for everything that touches
storage. Values crossing the seam are the plain ``attrs`` classes below: no
Twisted request and no gRPC type passes through.

Threads: every interface method is called on the reactor thread and returns a
Deferred (fired on the reactor thread). Objects that carry bodies
(:class:`IBodySource`, :class:`IObjectReader`) have methods documented as
*worker thread*: the backend iterates uploads, and the HTTP layer iterates
downloads, in the gateway's own thread pool.
"""

from __future__ import annotations

from datetime import datetime
from typing import Iterator, Sequence

import attrs
from twisted.internet.defer import Deferred
from zope.interface import Attribute, Interface


# Values ---------------------------------------------------------------------

#: The Content-Type of an object stored without one (S3's).
DEFAULT_CONTENT_TYPE = "binary/octet-stream"


@attrs.frozen
class BucketEntry:
    """One bucket in ListBuckets."""

    name: str
    created: datetime


@attrs.frozen
class ObjectMetadata:
    """The S3 metadata a client sets on PUT and gets back on GET/HEAD.

    ``headers`` holds the standard content headers that round-trip
    (lower-case names: ``content-type``, ``content-encoding`` (with
    ``aws-chunked`` already stripped), ``content-disposition``,
    ``content-language``, ``cache-control``, ``expires``); ``user`` holds the
    ``x-amz-meta-*`` pairs with the prefix removed and the name lower-cased.
    """

    headers: dict[str, str] = attrs.field(factory=dict)
    user: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen
class ObjectInfo:
    """What HEAD returns and GET starts with."""

    key: str
    size: int
    #: Unquoted: MD5 hex for single PUTs, ``md5-of-md5s-N`` for multipart, the
    #: hex PFS hash for files written outside the gateway.
    etag: str
    last_modified: datetime
    #: The commit ID that wrote this version.
    version_id: str | None = None
    metadata: ObjectMetadata = attrs.field(factory=ObjectMetadata)
    #: Verified checksums stored at upload, algorithm (``CRC32``...) → base64.
    checksums: dict[str, str] = attrs.field(factory=dict)
    #: For multipart objects: the size of each part, in order (for
    #: ``?partNumber=`` and ``x-amz-mp-parts-count``).
    part_sizes: tuple[int, ...] = ()
    #: For multipart objects uploaded with checksums: each part's, in order
    #: (for GetObjectAttributes' ``ObjectParts``).
    part_checksums: tuple[dict[str, str], ...] = ()


@attrs.frozen
class ObjectSummary:
    """One object in a listing."""

    key: str
    size: int
    etag: str
    last_modified: datetime


@attrs.frozen
class ListPage:
    """One page of ListObjects (v1 or v2; the HTTP layer picks the XML).

    ``next_marker`` is the last key or common prefix the page covered; the
    next page starts strictly after it. It is set whenever ``is_truncated``.
    """

    contents: Sequence[ObjectSummary]
    common_prefixes: Sequence[str]
    is_truncated: bool
    next_marker: str | None = None


@attrs.frozen
class ObjectVersion:
    """One entry of ListObjectVersions: an object version or a delete marker."""

    key: str
    version_id: str
    is_latest: bool
    last_modified: datetime
    size: int = 0
    etag: str = ""
    is_delete_marker: bool = False


@attrs.frozen
class VersionsPage:
    versions: Sequence[ObjectVersion]
    common_prefixes: Sequence[str]
    is_truncated: bool
    next_key_marker: str | None = None
    next_version_id_marker: str | None = None


@attrs.frozen
class WriteResult:
    """What a write returns: the new object's ETag and the commit it made."""

    etag: str
    version_id: str | None = None
    last_modified: datetime | None = None
    checksums: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen
class WriteConditions:
    """``If-None-Match`` / ``If-Match`` of a PUT, CopyObject or CompleteMultipartUpload.

    The backend checks them against the object the write replaces, atomically
    with the write (two racing ``If-None-Match: *`` writers cannot both win),
    and writes nothing when they fail: PreconditionFailed (412), or NoSuchKey
    (404) for ``If-Match`` on a missing key. Values are the header texts,
    ETag lists as sent (``*`` or quoted/unquoted ETags, comma-separated);
    :func:`pachs3gw.s3.conditions.check_write_conditions` evaluates them.
    """

    if_match: str | None = None
    if_none_match: str | None = None


@attrs.frozen
class DeleteResult:
    """Outcome for one key of DeleteObject / DeleteObjects.

    ``error`` is None on success, else the S3 error for this key alone.
    """

    key: str
    version_id: str | None = None
    error: Exception | None = None
    #: The version deleted was (or the deletion made) a delete marker.
    delete_marker: bool = False


@attrs.frozen
class CopySource:
    bucket: str
    key: str
    version_id: str | None = None
    #: Inclusive byte range from ``x-amz-copy-source-range`` (UploadPartCopy).
    byte_range: tuple[int, int] | None = None


@attrs.frozen
class CompletedPart:
    """One ``<Part>`` of a CompleteMultipartUpload request."""

    part_number: int
    #: Unquoted, as :func:`pachs3gw.s3.conditions.normalize_etag` gives it.
    etag: str
    #: Algorithm (``CRC32``...) → base64 value the client claims for the part.
    checksums: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen
class PartInfo:
    part_number: int
    etag: str
    size: int
    last_modified: datetime
    #: Verified checksums the part was uploaded with (algorithm → base64).
    checksums: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen
class PartsPage:
    parts: Sequence[PartInfo]
    is_truncated: bool
    next_part_number_marker: int | None = None


@attrs.frozen
class UploadInfo:
    key: str
    upload_id: str
    initiated: datetime


@attrs.frozen
class UploadsPage:
    uploads: Sequence[UploadInfo]
    common_prefixes: Sequence[str]
    is_truncated: bool
    next_key_marker: str | None = None
    next_upload_id_marker: str | None = None


# Bodies ---------------------------------------------------------------------


class IBodySource(Interface):
    """A request body on its way in, verified as it streams.

    The HTTP layer feeds it from the network with backpressure; the backend
    iterates it from a worker thread, straight into a gRPC request stream.
    If the body turns out bad (digest mismatch, client gone, bad chunk
    signature), iteration raises the :class:`~pachs3gw.s3.errors.S3Error` (or
    :class:`BodyAborted`) instead of ending: the backend must then abandon
    its write so that nothing becomes visible.
    """

    expected_length = Attribute("Decoded length if known in advance, else None.")

    def chunks() -> Iterator[bytes]:
        """*Worker thread.* Yield the body's bytes; ends only after all checks passed."""

    def md5_hex() -> str:
        """*Worker thread*, after ``chunks()`` is exhausted: the body's MD5."""

    def checksums() -> dict[str, str]:
        """After exhaustion: verified checksums (``CRC32`` → base64, ...) to store."""

    def arrived() -> Deferred[bool]:
        """*Reactor thread.* Ask for the body, and learn whether it is all here.

        Fires True once the whole body has arrived and waits in memory
        (reading it then takes no network time), False as soon as it cannot
        (larger than the buffer, or a source that does not buffer); fails
        with :class:`BodyAborted` if the client goes away first. A backend
        that must not hold something shared while a slow client sends (a
        branch's open commit, which every writer of the branch waits for)
        waits for this first.
        """


class BodyAborted(Exception):
    """The client went away before the body was complete."""


class IObjectReader(Interface):
    """An object's bytes on their way out."""

    info = Attribute("The ObjectInfo the read is of.")

    def read(offset: int, length: int) -> Iterator[bytes]:
        """*Worker thread.* Yield ``length`` bytes from ``offset`` in pieces of ~1 MiB."""

    def read_small(offset: int, length: int) -> Deferred[bytes]:
        """*Reactor thread.* ``length`` bytes from ``offset`` at once.

        For reads of at most :data:`pachs3gw.s3.download.SMALL_READ_BYTES`:
        a backend that can answer them without a worker thread should.
        """

    def cancel() -> None:
        """*Any thread.* Stop the read; a blocked ``read`` iterator ends or raises."""


# The backend ------------------------------------------------------------------


class IBucketBackend(Interface):
    def list_buckets() -> Deferred[Sequence[BucketEntry]]:
        """All buckets the caller can see (never internal ones)."""

    def create_bucket(bucket: str) -> Deferred[None]:
        """Raise BucketAlreadyOwnedByYou if it exists, InvalidBucketName if malformed."""

    def delete_bucket(bucket: str) -> Deferred[None]:
        """Raise NoSuchBucket, or BucketNotEmpty when it still holds objects."""

    def head_bucket(bucket: str) -> Deferred[None]:
        """Raise NoSuchBucket if absent."""

    def get_bucket_location(bucket: str) -> Deferred[str]:
        """The region name (``""`` renders as the default region)."""

    def get_bucket_versioning(bucket: str) -> Deferred[str]:
        """``Enabled`` (every commit is a version) or ``""``."""


class IObjectBackend(Interface):
    def put_object(
        bucket: str,
        key: str,
        body: IBodySource,
        metadata: ObjectMetadata,
        conditions: WriteConditions | None = None,
    ) -> Deferred[WriteResult]:
        """Store the body as one atomic commit, or nothing at all (also when
        ``conditions`` fail: then without reading the body if it can)."""

    def get_object(bucket: str, key: str, version_id: str | None) -> Deferred[IObjectReader]:
        """Raise NoSuchBucket / NoSuchKey / NoSuchVersion."""

    def head_object(bucket: str, key: str, version_id: str | None) -> Deferred[ObjectInfo]:
        """Raise NoSuchBucket / NoSuchKey / NoSuchVersion."""

    def delete_object(bucket: str, key: str, version_id: str | None) -> Deferred[DeleteResult]:
        """One commit; deleting a missing key succeeds (S3 semantics)."""

    def delete_objects(
        bucket: str, keys: Sequence[tuple[str, str | None]]
    ) -> Deferred[Sequence[DeleteResult]]:
        """All deletions in ONE commit; per-key errors in the results."""

    def copy_object(
        source: CopySource,
        bucket: str,
        key: str,
        metadata: ObjectMetadata | None,
        conditions: WriteConditions | None = None,
    ) -> Deferred[WriteResult]:
        """One commit, no data through the gateway. ``metadata`` None = COPY directive.

        ``conditions`` are about the destination (as for ``put_object``)."""

    def list_objects(
        bucket: str, prefix: str, delimiter: str, start_after: str, max_keys: int
    ) -> Deferred[ListPage]:
        """Keys > ``start_after`` in order; cost proportional to the page."""

    def list_object_versions(
        bucket: str,
        prefix: str,
        delimiter: str,
        key_marker: str,
        version_id_marker: str,
        max_keys: int,
    ) -> Deferred[VersionsPage]:
        ...


class IMultipartBackend(Interface):
    def create_multipart_upload(
        bucket: str, key: str, metadata: ObjectMetadata, checksum_algorithm: str | None = None
    ) -> Deferred[str]:
        """Return a new upload ID.

        With ``checksum_algorithm`` (``CRC32``...), parts' checksums of that
        algorithm are kept and Complete gives the object the composite
        checksum (S3's ``base64(H(part checksums))-N``), or refuses a part
        uploaded without one.
        """

    def upload_part(
        bucket: str, key: str, upload_id: str, part_number: int, body: IBodySource
    ) -> Deferred[WriteResult]:
        """Store one part (ETag = its MD5). Raise NoSuchUpload."""

    def upload_part_copy(
        bucket: str, key: str, upload_id: str, part_number: int, source: CopySource
    ) -> Deferred[WriteResult]:
        ...

    def complete_multipart_upload(
        bucket: str,
        key: str,
        upload_id: str,
        parts: Sequence[CompletedPart],
        conditions: WriteConditions | None = None,
    ) -> Deferred[WriteResult]:
        """Validate (InvalidPart / InvalidPartOrder / EntityTooSmall), one commit.

        ``conditions`` are about the object the upload replaces (as for
        ``put_object``); a failed check keeps the upload.

        Completing an upload that already completed, with the same parts,
        answers the result of that completion again (SDKs retry a Complete
        whose reply was lost).
        """

    def abort_multipart_upload(bucket: str, key: str, upload_id: str) -> Deferred[None]:
        ...

    def list_parts(
        bucket: str, key: str, upload_id: str, part_number_marker: int, max_parts: int
    ) -> Deferred[PartsPage]:
        ...

    def list_multipart_uploads(
        bucket: str,
        prefix: str,
        delimiter: str,
        key_marker: str,
        upload_id_marker: str,
        max_uploads: int,
    ) -> Deferred[UploadsPage]:
        ...


class IAuthenticator(Interface):
    """Who may call, and with which secret signatures are checked."""

    enabled = Attribute("False: any or no credentials pass, signatures unchecked.")

    def secret_for(access_key: str) -> Deferred[str]:
        """The secret to verify signatures of ``access_key`` with.

        Raise InvalidAccessKeyId / AccessDenied for an unknown key.
        """

    def check_anonymous() -> Deferred[None]:
        """Whether an unsigned request may be served (``enabled`` being True).

        Fire (the authenticator learnt that auth is off: serve it) or fail
        with AccessDenied (callers must sign) or, when that can't be known
        now because the backend is down, the backend's 503.
        """


class IBackend(IBucketBackend, IObjectBackend, IMultipartBackend):
    """Everything the S3 HTTP layer needs from storage, for one caller.

    The HTTP layer obtains one per request from an :class:`IBackendFactory`
    with the caller's credentials, so that a backend can forward them (the
    Pachyderm token) to its store.
    """


class IBackendFactory(Interface):
    def backend_for(access_key: str | None) -> IBackend:
        """The backend acting for ``access_key`` (None = anonymous / auth off)."""
