"""The S3 backend over PFS: buckets are branches, objects are files at the head.

:class:`PfsBackend` is the face the S3 layer calls (``IBackend``); it holds
no logic of its own. Each operation goes to the small object of its concern,
as Pachyderm's s2 hands a request to its controller:

- :class:`~pachs3gw.gateway.bucket_ops.BucketOps`: buckets (``bucket_ops.py``);
- :class:`~pachs3gw.gateway.objects.ObjectOps`: PUT, GET, HEAD, DELETE, copy,
  ListObjects (``objects.py``, pages read by ``listing.py``);
- :class:`~pachs3gw.gateway.versions.VersionOps`: ListObjectVersions and
  DELETE ``?versionId=`` (``versions.py``);
- :class:`~pachs3gw.gateway.multipart.MultipartOps` and
  :class:`~pachs3gw.gateway.multipart_listing.MultipartListingOps`:
  multipart uploads and their listings.

All of them hold the backend's one
:class:`~pachs3gw.gateway._core.BackendCore`: the caller's client, the
factory's shared state, and the helpers every operation uses.

Threads: every IBackend method is called on the reactor thread and returns a
Deferred fired on the reactor thread (see the modules above for the threads
their request iterators and readers run on).
"""

from __future__ import annotations

from typing import Any, Sequence

from twisted.internet.defer import Deferred
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from pachs3gw.gateway._core import BackendCore, MultipartState, client_reactor
from pachs3gw.gateway.bucket_ops import BucketOps
from pachs3gw.gateway.commits import ABANDON_AFTER, BUSY_TIMEOUT, CommitTracker, Writers
from pachs3gw.gateway.history import HistoryCache
from pachs3gw.gateway.keys import KeyPaths
from pachs3gw.gateway.metadata import MetadataStore
from pachs3gw.gateway.multipart import MultipartOps
from pachs3gw.gateway.multipart_listing import MultipartListingOps
from pachs3gw.gateway.objects import ObjectOps
from pachs3gw.gateway.staging import Staging
from pachs3gw.gateway.versions import VersionOps
from pachs3gw.pfs.client import PfsClient
from pachs3gw.s3.http_interfaces import IS3Reactor
from pachs3gw.s3.interfaces import (
    BucketEntry,
    CompletedPart,
    CopySource,
    DeleteResult,
    IBackend,
    IBackendFactory,
    IBodySource,
    IObjectReader,
    ListPage,
    ObjectInfo,
    ObjectMetadata,
    PartsPage,
    UploadsPage,
    VersionsPage,
    WriteConditions,
    WriteResult,
)


#: Backends (one per caller's token) kept by a factory before it starts over.
BACKENDS_KEPT = 1024


@implementer(IBackend)
class PfsBackend:
    """S3 buckets and objects for one caller, over one :class:`PfsClient`.

    Cheap to create (the factory keeps one per token): the state worth keeping -- the
    metadata cache, the branch writers, the multipart bookkeeping -- lives
    in the shared objects the factory hands in (see
    :class:`~pachs3gw.gateway._core.BackendCore`; each defaults to a fresh
    one). Every method hands its call, arguments unchanged, to the object of
    its concern (see the module doc).
    """

    def __init__(
        self,
        client: PfsClient,
        reactor: IS3Reactor | None = None,
        pool: ThreadPool | None = None,
        metadata: MetadataStore | None = None,
        multipart: MultipartState | None = None,
        histories: HistoryCache | None = None,
        keys: KeyPaths | None = None,
        writers: Writers | None = None,
        staging: Staging | None = None,
    ) -> None:
        core = BackendCore(
            client, reactor, pool, metadata, multipart, histories, keys, writers, staging
        )
        self._buckets = BucketOps(core)
        self._versions = VersionOps(core)
        self._objects = ObjectOps(core, self._versions)
        self._multipart = MultipartOps(core)
        self._multipart_listing = MultipartListingOps(core, self._multipart)

    # buckets ------------------------------------------------------------------

    def list_buckets(self) -> Deferred[Sequence[BucketEntry]]:
        return self._buckets.list_buckets()

    def create_bucket(self, bucket: str) -> Deferred[None]:
        return self._buckets.create_bucket(bucket)

    def delete_bucket(self, bucket: str) -> Deferred[None]:
        return self._buckets.delete_bucket(bucket)

    def head_bucket(self, bucket: str) -> Deferred[None]:
        return self._buckets.head_bucket(bucket)

    def get_bucket_location(self, bucket: str) -> Deferred[str]:
        return self._buckets.get_bucket_location(bucket)

    def get_bucket_versioning(self, bucket: str) -> Deferred[str]:
        return self._buckets.get_bucket_versioning(bucket)

    # objects ------------------------------------------------------------------

    def put_object(
        self,
        bucket: str,
        key: str,
        body: IBodySource,
        metadata: ObjectMetadata,
        conditions: WriteConditions | None = None,
    ) -> Deferred[WriteResult]:
        return self._objects.put_object(bucket, key, body, metadata, conditions)

    def get_object(self, bucket: str, key: str, version_id: str | None) -> Deferred[IObjectReader]:
        return self._objects.get_object(bucket, key, version_id)

    def head_object(self, bucket: str, key: str, version_id: str | None) -> Deferred[ObjectInfo]:
        return self._objects.head_object(bucket, key, version_id)

    def delete_object(
        self, bucket: str, key: str, version_id: str | None
    ) -> Deferred[DeleteResult]:
        return self._objects.delete_object(bucket, key, version_id)

    def delete_objects(
        self, bucket: str, keys: Sequence[tuple[str, str | None]]
    ) -> Deferred[Sequence[DeleteResult]]:
        return self._objects.delete_objects(bucket, keys)

    def copy_object(
        self,
        source: CopySource,
        bucket: str,
        key: str,
        metadata: ObjectMetadata | None,
        conditions: WriteConditions | None = None,
    ) -> Deferred[WriteResult]:
        return self._objects.copy_object(source, bucket, key, metadata, conditions)

    def list_objects(
        self, bucket: str, prefix: str, delimiter: str, start_after: str, max_keys: int
    ) -> Deferred[ListPage]:
        return self._objects.list_objects(bucket, prefix, delimiter, start_after, max_keys)

    # versions -----------------------------------------------------------------

    def list_object_versions(
        self,
        bucket: str,
        prefix: str,
        delimiter: str,
        key_marker: str,
        version_id_marker: str,
        max_keys: int,
    ) -> Deferred[VersionsPage]:
        return self._versions.list_object_versions(
            bucket, prefix, delimiter, key_marker, version_id_marker, max_keys
        )

    # multipart ----------------------------------------------------------------

    def create_multipart_upload(
        self,
        bucket: str,
        key: str,
        metadata: ObjectMetadata,
        checksum_algorithm: str | None = None,
    ) -> Deferred[str]:
        return self._multipart.create_multipart_upload(bucket, key, metadata, checksum_algorithm)

    def upload_part(
        self, bucket: str, key: str, upload_id: str, part_number: int, body: IBodySource
    ) -> Deferred[WriteResult]:
        return self._multipart.upload_part(bucket, key, upload_id, part_number, body)

    def upload_part_copy(
        self, bucket: str, key: str, upload_id: str, part_number: int, source: CopySource
    ) -> Deferred[WriteResult]:
        return self._multipart.upload_part_copy(bucket, key, upload_id, part_number, source)

    def complete_multipart_upload(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        parts: Sequence[CompletedPart],
        conditions: WriteConditions | None = None,
    ) -> Deferred[WriteResult]:
        return self._multipart.complete_multipart_upload(bucket, key, upload_id, parts, conditions)

    def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> Deferred[None]:
        return self._multipart.abort_multipart_upload(bucket, key, upload_id)

    def list_parts(
        self, bucket: str, key: str, upload_id: str, part_number_marker: int, max_parts: int
    ) -> Deferred[PartsPage]:
        return self._multipart_listing.list_parts(
            bucket, key, upload_id, part_number_marker, max_parts
        )

    def list_multipart_uploads(
        self,
        bucket: str,
        prefix: str,
        delimiter: str,
        key_marker: str,
        upload_id_marker: str,
        max_uploads: int,
    ) -> Deferred[UploadsPage]:
        return self._multipart_listing.list_multipart_uploads(
            bucket, prefix, delimiter, key_marker, upload_id_marker, max_uploads
        )


@implementer(IBackendFactory)
class PfsBackendFactory:
    """Backends acting for callers, sharing one channel, pool and metadata cache.

    :param client: the PFS client (no token, or the gateway's own); its
        reactor and worker pool are used unless others are given.
    :param authenticator: optional; when it says Pachyderm auth is off
        (``enabled`` False), access keys are not forwarded. Otherwise each
        caller's access key goes to PFS as its Pachyderm token (a backend
        without auth ignores tokens).
    :param metadata_cache_size: records kept in the metadata LRU.
    :param abandon_after: seconds an open write commit that no writer of
        this process holds stays untouched before a writer discards it as
        abandoned (see :mod:`pachs3gw.gateway.commits`). With several
        gateways over one pachd it must exceed the longest write (a slow
        client's body streams inside the commit); where this process is
        the store's only gateway (the embedded store) it can be 0.
    :param busy_timeout: how long a write waits for an open commit it may
        not discard before it answers 503 SlowDown.
    """

    def __init__(
        self,
        client: PfsClient,
        reactor: IS3Reactor | None = None,
        pool: ThreadPool | None = None,
        authenticator: Any = None,
        metadata_cache_size: int = 65536,
        abandon_after: float = ABANDON_AFTER,
        busy_timeout: float = BUSY_TIMEOUT,
    ) -> None:
        self._client = client
        self._reactor = reactor if reactor is not None else client_reactor(client)
        self._pool = pool if pool is not None else client.pool
        self._authenticator = authenticator
        self.metadata = MetadataStore(self._reactor, self._pool, cache_size=metadata_cache_size)
        self.multipart = MultipartState()
        self.histories = HistoryCache()
        self.keys = KeyPaths()
        self.commits = CommitTracker()
        self.writers = Writers(
            self._reactor, self.metadata, self.commits, abandon_after, busy_timeout
        )
        self.staging = Staging()
        #: One backend per token, made once: a backend and its six parts cost
        #: ~10 µs to build, a tenth of what a HEAD's gateway side costs
        #: otherwise. (Backends keep no state of their own.)
        self._backends: dict[str | None, PfsBackend] = {}

    def backend_for(self, access_key: str | None) -> IBackend:
        """*Reactor thread.*"""
        forward = self._authenticator is None or self._authenticator.enabled
        token = access_key if access_key and forward else None
        backend = self._backends.get(token)
        if backend is None:
            if len(self._backends) >= BACKENDS_KEPT:
                self._backends.clear()
            backend = self._backends[token] = self._make_backend(token)
        return backend

    def _make_backend(self, token: str | None) -> PfsBackend:
        client = self._client if token is None else self._client.with_token(token)
        return PfsBackend(
            client,
            self._reactor,
            self._pool,
            self.metadata,
            self.multipart,
            self.histories,
            self.keys,
            self.writers,
            self.staging,
        )


__all__ = ["PfsBackend", "PfsBackendFactory"]
