"""In-memory test doubles for the S3 HTTP layer, as public API.

Like ``treq.testing.StubTreq``: :class:`MemoryBackend` implements the whole
backend interface (buckets, objects with version history, listings,
multipart, copies) in memory, so the S3 layer — or an application embedding
it — can be exercised without PFS::

    backend = MemoryBackend(reactor)
    server = S3Server(reactor, pool, backend, MemoryAuthenticator())
    reactor.listenTCP(0, make_site(server, reactor))

It follows the interface's threading rules faithfully: request bodies are
iterated in a thread pool (so checksum failures and client disconnects
arrive exactly as they would in the real backend), and state is only
touched on the reactor thread.  A few counters (``aborted_writes``,
``cancelled_reads``) let tests check that a failed upload stored nothing
and a dropped download was cancelled.
"""

from __future__ import annotations

import hashlib
import re
import threading
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from typing import Any

import attrs
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorThreads
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from pachs3gw.s3 import errors
from pachs3gw.s3.checksums import composite_checksum, multipart_etag
from pachs3gw.s3.conditions import check_write_conditions, normalize_etag
from pachs3gw.s3.limits import MIN_PART_SIZE
from pachs3gw.s3.interfaces import (
    BucketEntry,
    CompletedPart,
    CopySource,
    DeleteResult,
    IAuthenticator,
    IBackend,
    IBackendFactory,
    IBodySource,
    IObjectReader,
    ListPage,
    ObjectInfo,
    ObjectMetadata,
    ObjectSummary,
    ObjectVersion,
    PartInfo,
    PartsPage,
    UploadInfo,
    UploadsPage,
    VersionsPage,
    WriteConditions,
    WriteResult,
)

__all__ = ["MemoryAuthenticator", "MemoryBackend", "MemoryObjectReader"]

#: S3's rule: 3-63 of a-z 0-9 . -, starting and ending with a letter or digit,
#: no two adjacent periods.
_BUCKET_NAME = re.compile(r"(?!.*\.\.)[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")


@implementer(IAuthenticator)
class MemoryAuthenticator:
    """Access key → secret from a dict; ``None`` (the default) turns auth off."""

    def __init__(self, secrets: dict[str, str] | None = None) -> None:
        self.secrets = secrets
        self.enabled = secrets is not None

    def secret_for(self, access_key: str) -> Deferred[str]:
        if self.secrets is None or access_key not in self.secrets:
            return fail(errors.InvalidAccessKeyId())
        return succeed(self.secrets[access_key])

    def check_anonymous(self) -> Deferred[None]:
        return fail(errors.AccessDenied()) if self.enabled else succeed(None)


@attrs.define
class _Version:
    version_id: str
    key: str
    data: bytes
    info: ObjectInfo | None  # None: a delete marker
    last_modified: datetime


@attrs.define
class _Upload:
    upload_id: str
    key: str
    metadata: ObjectMetadata
    initiated: datetime
    checksum_algorithm: str | None = None
    #: number → (bytes, md5, when, verified checksums)
    parts: dict[int, tuple[bytes, str, datetime, dict[str, str]]] = attrs.field(factory=dict)


@attrs.define
class _Bucket:
    created: datetime
    #: key → versions, oldest first.
    versions: dict[str, list[_Version]] = attrs.field(factory=dict)
    uploads: dict[str, _Upload] = attrs.field(factory=dict)
    #: upload ID → (key, [(part number, ETag)], result) of completed uploads.
    completed: dict[str, tuple[str, list[tuple[int, str]], WriteResult]] = attrs.field(
        factory=dict
    )

    def live(self, key: str) -> _Version | None:
        history = self.versions.get(key)
        if not history or history[-1].info is None:
            return None
        return history[-1]


@implementer(IObjectReader)
class MemoryObjectReader:
    """Reads a bytes object in pieces; ``cancel()`` ends a read in progress."""

    def __init__(self, backend: MemoryBackend, info: ObjectInfo, data: bytes) -> None:
        self.info = info
        self._backend = backend
        self._data = data
        # A flag, not a threading.Event: one is made per GET, and an Event
        # (a Condition and its lock) costs more than the rest of a 4 KiB
        # read here, which bench.s3layer would count as the S3 layer's.
        self._cancelled = False

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def read(self, offset: int, length: int) -> Iterator[bytes]:
        """*Worker thread.*"""
        end = min(offset + length, len(self._data))
        pos = offset
        while pos < end:
            if self._cancelled:
                return
            n = min(self._backend.read_chunk_size, end - pos)
            yield self._data[pos : pos + n]
            pos += n

    def read_small(self, offset: int, length: int) -> Deferred[bytes]:
        """*Reactor thread.*"""
        return succeed(self._data[offset : offset + length])

    def cancel(self) -> None:
        """*Any thread.*"""
        if not self._cancelled:
            self._cancelled = True
            self._backend._reactor.callFromThread(self._backend._read_cancelled)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _new_version_id() -> str:
    return uuid.uuid4().hex


@implementer(IBackend, IBackendFactory)
class MemoryBackend:
    """The whole backend interface, in memory.

    :param reactor: the reactor (for the thread pool and callbacks).
    :param pool: where bodies are read; the reactor's pool by default.
    :param min_part_size: every part but the last must be at least this big
        (S3: 5 MiB).
    :param read_chunk_size: size of the pieces a read yields.
    """

    def __init__(
        self,
        reactor: IReactorThreads,
        pool: ThreadPool | None = None,
        *,
        min_part_size: int = MIN_PART_SIZE,
        read_chunk_size: int = 1024 * 1024,
    ) -> None:
        self._reactor = reactor
        self._pool = pool
        self.min_part_size = min_part_size
        self.read_chunk_size = read_chunk_size
        self.buckets: dict[str, _Bucket] = {}
        #: Uploads whose body failed (bad digest, client gone): nothing stored.
        self.aborted_writes = 0
        #: Reads cancelled before they ended (client gone mid-GET).
        self.cancelled_reads = 0
        #: The access keys ``backend_for`` was called with.
        self.access_keys: list[str | None] = []

    # IBackendFactory ---------------------------------------------------------

    def backend_for(self, access_key: str | None) -> IBackend:
        self.access_keys.append(access_key)
        return self

    # Conveniences for tests ------------------------------------------------------

    def objects(self, bucket: str) -> dict[str, bytes]:
        """The live objects of ``bucket``: key → bytes."""
        b = self.buckets[bucket]
        return {k: v.data for k in sorted(b.versions) if (v := b.live(k)) is not None}

    def seed_bucket(self, bucket: str) -> None:
        """Create ``bucket`` at once if it does not exist (*reactor thread*)."""
        if bucket not in self.buckets:
            if not _BUCKET_NAME.fullmatch(bucket):
                raise errors.InvalidBucketName(extra={"BucketName": bucket})
            self.buckets[bucket] = _Bucket(created=_now())

    def pending_uploads(self, bucket: str) -> dict[str, str]:
        """The multipart uploads of ``bucket`` neither completed nor aborted: ID → key."""
        return {u.upload_id: u.key for u in self.buckets[bucket].uploads.values()}

    def seed(
        self,
        bucket: str,
        key: str,
        data: bytes,
        *,
        metadata: ObjectMetadata | None = None,
        etag: str | None = None,
        checksums: dict[str, str] | None = None,
        part_sizes: tuple[int, ...] = (),
    ) -> WriteResult:
        """Store an object at once, without a request body or a Deferred.

        *Reactor thread* (or before the reactor runs). The bucket is created
        if it does not exist. ``etag`` defaults to the MD5 of ``data``; pass
        ``md5-of-md5s-N`` with ``part_sizes`` to stand for a multipart
        object, or any hex string for one written outside S3. The arranging
        step of a test: what it then checks goes through the interface.
        """
        self.seed_bucket(bucket)
        return self._store(
            bucket,
            key,
            data,
            hashlib.md5(data).hexdigest() if etag is None else etag,
            ObjectMetadata() if metadata is None else metadata,
            dict(checksums or {}),
            part_sizes,
        )

    def _read_cancelled(self) -> None:
        self.cancelled_reads += 1

    def _bucket(self, name: str) -> _Bucket:
        b = self.buckets.get(name)
        if b is None:
            raise errors.NoSuchBucket(extra={"BucketName": name})
        return b

    def _version(self, bucket: str, key: str, version_id: str | None) -> _Version:
        b = self._bucket(bucket)
        history = b.versions.get(key, [])
        if version_id is None:
            v = b.live(key)
            if v is None:
                raise errors.NoSuchKey(extra={"Key": key})
            return v
        for v in history:
            if v.version_id == version_id:
                if v.info is None:
                    raise errors.MethodNotAllowed("The specified version is a delete marker.")
                return v
        raise errors.NoSuchVersion(extra={"Key": key, "VersionId": version_id})

    def _read_body(self, body: IBodySource) -> Deferred[tuple[bytes, str, dict[str, str]]]:
        """Read a whole body in the pool, as a real backend streams it."""

        def read() -> tuple[bytes, str, dict[str, str]]:
            data = b"".join(body.chunks())
            return data, body.md5_hex(), body.checksums()

        if self._pool is None:
            d = deferToThreadPool(self._reactor, self._reactor.getThreadPool(), read)
        else:
            d = deferToThreadPool(self._reactor, self._pool, read)

        def failed(f: Any) -> Any:
            self.aborted_writes += 1
            return f

        return d.addErrback(failed)

    def _store(
        self,
        bucket: str,
        key: str,
        data: bytes,
        etag: str,
        metadata: ObjectMetadata,
        checksums: dict[str, str],
        part_sizes: tuple[int, ...] = (),
    ) -> WriteResult:
        b = self._bucket(bucket)
        version_id = _new_version_id()
        now = _now()
        info = ObjectInfo(
            key=key,
            size=len(data),
            etag=etag,
            last_modified=now,
            version_id=version_id,
            metadata=metadata,
            checksums=dict(checksums),
            part_sizes=part_sizes,
        )
        b.versions.setdefault(key, []).append(_Version(version_id, key, data, info, now))
        return WriteResult(etag=etag, version_id=version_id, last_modified=now, checksums=checksums)

    def _check(self, bucket: str, key: str, conditions: WriteConditions | None) -> None:
        """The write conditions against the live object (reactor thread: atomic with a store)."""
        if conditions is not None:
            live = self._bucket(bucket).live(key)
            etag = live.info.etag if live is not None and live.info is not None else None
            check_write_conditions(conditions, key, etag)

    def _call(self, fn: Any, *args: Any) -> Deferred[Any]:
        try:
            return succeed(fn(*args))
        except Exception:
            return fail()

    # Buckets ---------------------------------------------------------------------

    def list_buckets(self) -> Deferred[Sequence[BucketEntry]]:
        return succeed([BucketEntry(n, b.created) for n, b in sorted(self.buckets.items())])

    def create_bucket(self, bucket: str) -> Deferred[None]:
        def create() -> None:
            if not _BUCKET_NAME.fullmatch(bucket):
                raise errors.InvalidBucketName(extra={"BucketName": bucket})
            if bucket in self.buckets:
                raise errors.BucketAlreadyOwnedByYou(extra={"BucketName": bucket})
            self.buckets[bucket] = _Bucket(created=_now())

        return self._call(create)

    def delete_bucket(self, bucket: str) -> Deferred[None]:
        def delete() -> None:
            b = self._bucket(bucket)
            if any(b.live(k) is not None for k in b.versions):
                raise errors.BucketNotEmpty(extra={"BucketName": bucket})
            del self.buckets[bucket]

        return self._call(delete)

    def head_bucket(self, bucket: str) -> Deferred[None]:
        return self._call(lambda: self._bucket(bucket) and None)

    def get_bucket_location(self, bucket: str) -> Deferred[str]:
        return self._call(lambda: self._bucket(bucket) and "")

    def get_bucket_versioning(self, bucket: str) -> Deferred[str]:
        return self._call(lambda: self._bucket(bucket) and "Enabled")

    # Objects -----------------------------------------------------------------------

    def put_object(
        self,
        bucket: str,
        key: str,
        body: IBodySource,
        metadata: ObjectMetadata,
        conditions: WriteConditions | None = None,
    ) -> Deferred[WriteResult]:
        try:
            self._bucket(bucket)
            self._check(bucket, key, conditions)  # early: a refused write reads no body
        except errors.S3Error:
            return fail()
        d = self._read_body(body)

        def store(r: tuple[bytes, str, dict[str, str]]) -> WriteResult:
            self._check(bucket, key, conditions)  # again, with the store: atomic
            return self._store(bucket, key, r[0], r[1], metadata, r[2])

        return d.addCallback(store)

    def get_object(self, bucket: str, key: str, version_id: str | None) -> Deferred[IObjectReader]:
        def get() -> IObjectReader:
            v = self._version(bucket, key, version_id)
            assert v.info is not None
            return MemoryObjectReader(self, v.info, v.data)

        return self._call(get)

    def head_object(self, bucket: str, key: str, version_id: str | None) -> Deferred[ObjectInfo]:
        def head() -> ObjectInfo:
            v = self._version(bucket, key, version_id)
            assert v.info is not None
            return v.info

        return self._call(head)

    def _delete(self, bucket: str, key: str, version_id: str | None) -> DeleteResult:
        b = self._bucket(bucket)
        history = b.versions.get(key, [])
        if version_id is not None:
            kept = [v for v in history if v.version_id != version_id]
            if len(kept) == len(history):
                return DeleteResult(key, version_id, errors.NoSuchVersion(extra={"Key": key}))
            was_marker = any(v.version_id == version_id and v.info is None for v in history)
            if kept:
                b.versions[key] = kept
            else:
                b.versions.pop(key, None)
            return DeleteResult(key, version_id, delete_marker=was_marker)
        if b.live(key) is None:
            return DeleteResult(key)
        marker = _Version(_new_version_id(), key, b"", None, _now())
        history.append(marker)
        return DeleteResult(key, marker.version_id, delete_marker=True)

    def delete_object(self, bucket: str, key: str, version_id: str | None) -> Deferred[DeleteResult]:
        return self._call(self._delete, bucket, key, version_id)

    def delete_objects(
        self, bucket: str, keys: Sequence[tuple[str, str | None]]
    ) -> Deferred[Sequence[DeleteResult]]:
        def delete_all() -> list[DeleteResult]:
            self._bucket(bucket)
            return [self._delete(bucket, k, v) for k, v in keys]

        return self._call(delete_all)

    def copy_object(
        self,
        source: CopySource,
        bucket: str,
        key: str,
        metadata: ObjectMetadata | None,
        conditions: WriteConditions | None = None,
    ) -> Deferred[WriteResult]:
        def copy() -> WriteResult:
            src = self._version(source.bucket, source.key, source.version_id)
            assert src.info is not None
            self._bucket(bucket)
            self._check(bucket, key, conditions)
            return self._store(
                bucket,
                key,
                src.data,
                src.info.etag,
                src.info.metadata if metadata is None else metadata,
                src.info.checksums,
                src.info.part_sizes,
            )

        return self._call(copy)

    def list_objects(
        self, bucket: str, prefix: str, delimiter: str, start_after: str, max_keys: int
    ) -> Deferred[ListPage]:
        def list_() -> ListPage:
            b = self._bucket(bucket)
            if max_keys <= 0:
                # S3 (and s3-tests' test_bucket_list_maxkeys_zero): nothing, not truncated.
                return ListPage((), (), False)
            contents: list[ObjectSummary] = []
            prefixes: list[str] = []
            last: str | None = None
            truncated = False
            for key in sorted(b.versions):
                if key <= start_after or not key.startswith(prefix):
                    continue
                v = b.live(key)
                if v is None:
                    continue
                entry: str = key
                cp: str | None = None
                if delimiter:
                    i = key.find(delimiter, len(prefix))
                    if i >= 0:
                        cp = key[: i + len(delimiter)]
                        if start_after.startswith(cp) or cp == last:
                            continue
                        entry = cp
                if len(contents) + len(prefixes) >= max_keys:
                    truncated = True
                    break
                if cp is not None:
                    prefixes.append(cp)
                else:
                    assert v.info is not None
                    contents.append(
                        ObjectSummary(key, v.info.size, v.info.etag, v.info.last_modified)
                    )
                last = entry
            return ListPage(contents, prefixes, truncated, last if truncated else None)

        return self._call(list_)

    def list_object_versions(
        self,
        bucket: str,
        prefix: str,
        delimiter: str,
        key_marker: str,
        version_id_marker: str,
        max_keys: int,
    ) -> Deferred[VersionsPage]:
        def list_() -> VersionsPage:
            b = self._bucket(bucket)
            out: list[ObjectVersion] = []
            prefixes: list[str] = []
            entries: list[tuple[str, str | None, ObjectVersion | None]] = []
            for key in sorted(b.versions):
                if not key.startswith(prefix):
                    continue
                if delimiter:
                    i = key.find(delimiter, len(prefix))
                    if i >= 0:
                        cp = key[: i + len(delimiter)]
                        if not entries or entries[-1][0] != cp:
                            entries.append((cp, None, None))
                        continue
                history = b.versions[key]
                for n, v in enumerate(reversed(history)):
                    info = v.info
                    entries.append(
                        (
                            key,
                            v.version_id,
                            ObjectVersion(
                                key=key,
                                version_id=v.version_id,
                                is_latest=n == 0,
                                last_modified=v.last_modified,
                                size=info.size if info else 0,
                                etag=info.etag if info else "",
                                is_delete_marker=info is None,
                            ),
                        )
                    )
            # Skip up to and including the markers.
            start = 0
            if key_marker:
                for i, (k, vid, _) in enumerate(entries):
                    if k < key_marker:
                        start = i + 1
                    elif k == key_marker:
                        if not version_id_marker:
                            start = i + 1
                        elif vid == version_id_marker:
                            start = i + 1
                            break
            rest = entries[start:]
            page, more = rest[:max_keys], len(rest) > max_keys
            for k, vid, ov in page:
                if ov is None:
                    prefixes.append(k)
                else:
                    out.append(ov)
            next_key = next_vid = None
            if more and page:
                next_key, next_vid = page[-1][0], page[-1][1]
            return VersionsPage(out, prefixes, more, next_key, next_vid)

        return self._call(list_)

    # Multipart ---------------------------------------------------------------------

    def _upload(self, bucket: str, key: str, upload_id: str) -> _Upload:
        up = self._bucket(bucket).uploads.get(upload_id)
        if up is None or up.key != key:
            raise errors.NoSuchUpload(extra={"UploadId": upload_id})
        return up

    def create_multipart_upload(
        self,
        bucket: str,
        key: str,
        metadata: ObjectMetadata,
        checksum_algorithm: str | None = None,
    ) -> Deferred[str]:
        def create() -> str:
            b = self._bucket(bucket)
            upload_id = _new_version_id()
            b.uploads[upload_id] = _Upload(upload_id, key, metadata, _now(), checksum_algorithm)
            return upload_id

        return self._call(create)

    def upload_part(
        self, bucket: str, key: str, upload_id: str, part_number: int, body: IBodySource
    ) -> Deferred[WriteResult]:
        try:
            self._upload(bucket, key, upload_id)
        except errors.S3Error:
            return fail()

        def store(r: tuple[bytes, str, dict[str, str]]) -> WriteResult:
            up = self._upload(bucket, key, upload_id)
            now = _now()
            up.parts[part_number] = (r[0], r[1], now, dict(r[2]))
            return WriteResult(etag=r[1], last_modified=now, checksums=r[2])

        return self._read_body(body).addCallback(store)

    def upload_part_copy(
        self, bucket: str, key: str, upload_id: str, part_number: int, source: CopySource
    ) -> Deferred[WriteResult]:
        def copy() -> WriteResult:
            up = self._upload(bucket, key, upload_id)
            src = self._version(source.bucket, source.key, source.version_id)
            data = src.data
            if source.byte_range is not None:
                first, last = source.byte_range
                if not 0 <= first <= last < len(data):
                    raise errors.InvalidRange(
                        f"The x-amz-copy-source-range bytes={first}-{last} is not within the "
                        f"source object of {len(data)} bytes.",
                        extra={"ActualObjectSize": str(len(data))},
                    )
                data = data[first : last + 1]
            etag = hashlib.md5(data).hexdigest()
            now = _now()
            up.parts[part_number] = (data, etag, now, {})
            return WriteResult(etag=etag, last_modified=now)

        return self._call(copy)

    def complete_multipart_upload(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        parts: Sequence[CompletedPart],
        conditions: WriteConditions | None = None,
    ) -> Deferred[WriteResult]:
        def complete() -> WriteResult:
            listed = [(p.part_number, normalize_etag(p.etag)) for p in parts]
            done = self._bucket(bucket).completed.get(upload_id)
            if done is not None and (done[0], done[1]) == (key, listed):
                return done[2]
            up = self._upload(bucket, key, upload_id)
            self._check(bucket, key, conditions)
            if not parts:
                raise errors.MalformedXML(
                    "The XML you provided was not well-formed or did not validate against "
                    "our published schema: at least one part must be specified."
                )
            numbers = [p.part_number for p in parts]
            if numbers != sorted(set(numbers)):
                raise errors.InvalidPartOrder()
            chosen = []
            for i, p in enumerate(parts):
                stored = up.parts.get(p.part_number)
                if stored is None or normalize_etag(p.etag) != stored[1]:
                    raise errors.InvalidPart(
                        extra={"PartNumber": str(p.part_number), "ETag": p.etag}
                    )
                if i < len(parts) - 1 and len(stored[0]) < self.min_part_size:
                    raise errors.EntityTooSmall(
                        extra={
                            "ProposedSize": str(len(stored[0])),
                            "MinSizeAllowed": str(self.min_part_size),
                            "PartNumber": str(p.part_number),
                        }
                    )
                chosen.append(stored)
            data = b"".join(s[0] for s in chosen)
            etag = multipart_etag([s[1] for s in chosen])
            checksums: dict[str, str] = {}
            alg = up.checksum_algorithm
            if alg is not None:
                missing = [p.part_number for p, s in zip(parts, chosen) if alg not in s[3]]
                if missing:
                    raise errors.InvalidRequest(
                        f"The upload was created using a {alg.lower()} checksum; part "
                        f"{missing[0]} was uploaded without one."
                    )
                checksums[alg] = composite_checksum(alg, [s[3][alg] for s in chosen])
            result = self._store(
                bucket, key, data, etag, up.metadata, checksums, tuple(len(s[0]) for s in chosen)
            )
            if alg is not None:
                v = self._bucket(bucket).versions[key][-1]
                assert v.info is not None
                v.info = attrs.evolve(v.info, part_checksums=tuple(dict(s[3]) for s in chosen))
            b = self._bucket(bucket)
            del b.uploads[upload_id]
            b.completed[upload_id] = (key, listed, result)
            return result

        return self._call(complete)

    def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> Deferred[None]:
        def abort() -> None:
            self._upload(bucket, key, upload_id)
            del self._bucket(bucket).uploads[upload_id]

        return self._call(abort)

    def list_parts(
        self, bucket: str, key: str, upload_id: str, part_number_marker: int, max_parts: int
    ) -> Deferred[PartsPage]:
        def list_() -> PartsPage:
            up = self._upload(bucket, key, upload_id)
            numbers = [n for n in sorted(up.parts) if n > part_number_marker]
            page, more = numbers[:max_parts], len(numbers) > max_parts
            infos = [
                PartInfo(n, up.parts[n][1], len(up.parts[n][0]), up.parts[n][2], up.parts[n][3])
                for n in page
            ]
            return PartsPage(infos, more, page[-1] if more and page else None)

        return self._call(list_)

    def list_multipart_uploads(
        self,
        bucket: str,
        prefix: str,
        delimiter: str,
        key_marker: str,
        upload_id_marker: str,
        max_uploads: int,
    ) -> Deferred[UploadsPage]:
        def list_() -> UploadsPage:
            b = self._bucket(bucket)
            ups = sorted(b.uploads.values(), key=lambda u: (u.key, u.initiated, u.upload_id))
            entries: list[tuple[str, str | None, UploadInfo | None]] = []
            for u in ups:
                if not u.key.startswith(prefix):
                    continue
                if delimiter:
                    i = u.key.find(delimiter, len(prefix))
                    if i >= 0:
                        cp = u.key[: i + len(delimiter)]
                        if not entries or entries[-1][0] != cp:
                            entries.append((cp, None, None))
                        continue
                entries.append((u.key, u.upload_id, UploadInfo(u.key, u.upload_id, u.initiated)))
            if key_marker:
                start = 0
                for i, (k, uid, _) in enumerate(entries):
                    if k < key_marker or (
                        k == key_marker and (not upload_id_marker or uid == upload_id_marker)
                    ):
                        start = i + 1
                entries = entries[start:]
            page, more = entries[:max_uploads], len(entries) > max_uploads
            uploads = [e[2] for e in page if e[2] is not None]
            prefixes = [e[0] for e in page if e[2] is None]
            nk = nu = None
            if more and page:
                nk, nu = page[-1][0], page[-1][1]
            return UploadsPage(uploads, prefixes, more, nk, nu)

        return self._call(list_)
