"""The S3 backend over PFS: buckets are branches, objects are files at the head.

Every write is one step inside an explicit commit of its branch, run by the
branch's writer (:mod:`pachs3gw.gateway.commits`): ModifyFile into the open
commit, InspectFile of what it wrote, its metadata record, and only then
FinishCommit and the answer, whose version ID is that commit. A write that
fails, or is cut off, leaves nothing visible.

Threads: every IBackend method is called on the reactor thread and returns a
Deferred fired on the reactor thread. Request iterators handed to
``modify_file`` (which pull ``body.chunks()``) run on grpc's request-consumer
thread; :class:`~pachs3gw.gateway.reader.PfsObjectReader` is read on the HTTP
layer's worker thread.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

from twisted.internet.defer import DeferredSemaphore, gatherResults
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from pachs3gw.gateway._errors import s3_operation
from pachs3gw.gateway._pfsutil import to_datetime
from pachs3gw.gateway.buckets import bucket_name, parse_bucket
from pachs3gw.gateway.commits import ABANDON_AFTER, BUSY_TIMEOUT, CommitTracker, Scope, Writers
from pachs3gw.gateway.keys import KeyPaths, check_key
from pachs3gw.gateway.history import HistoryCache
from pachs3gw.gateway.listing import list_page
from pachs3gw.gateway.metadata import MetadataStore, Record
from pachs3gw.gateway.staging import Staging
from pachs3gw.gateway._core import BackendCore, MultipartState, client_reactor
from pachs3gw.gateway.multipart_listing import MultipartListingMixin
from pachs3gw.gateway.reader import PfsObjectReader
from pachs3gw.gateway.versions import VersionsMixin
from pachs3gw.pfs import client as pfs_client
from pachs3gw.pfs import errors as pfs_errors
from pachs3gw.pfs import refs
from pachs3gw.pfs.client import PfsClient
from pachs3gw.proto import pfs_v2_pb2 as pfs
from pachs3gw.s3 import errors
from pachs3gw.s3.http_interfaces import IS3Reactor
from pachs3gw.s3.interfaces import (
    BucketEntry,
    CopySource,
    DeleteResult,
    IBackend,
    IBackendFactory,
    IBodySource,
    IObjectReader,
    ListPage,
    ObjectInfo,
    ObjectMetadata,
    ObjectSummary,
    WriteConditions,
    WriteResult,
)

#: Concurrent InspectFile calls of one DeleteObjects.
DELETE_CHECK_CONCURRENCY = 16


@implementer(IBackend)
class PfsBackend(MultipartListingMixin, VersionsMixin, BackendCore):
    """S3 buckets and objects for one caller, over one :class:`PfsClient`.

    Cheap to create (one per request): the state worth keeping -- the
    metadata cache, the branch writers, the multipart bookkeeping -- lives
    in the shared objects the factory hands in (see
    :class:`~pachs3gw.gateway._core.BackendCore`; each defaults to a fresh one).
    """

    # buckets ------------------------------------------------------------------

    @s3_operation
    async def list_buckets(self) -> Sequence[BucketEntry]:
        entries = []
        for info in await self._client.list_repos("user"):
            repo = info.repo
            if repo.name.startswith("_"):
                continue
            project = repo.project.name or refs.DEFAULT_PROJECT
            branches = [b.name for b in info.branches]
            if not branches:
                branches = [
                    b.branch.name for b in await self._client.list_branches(info.repo)
                ]
            created = to_datetime(info.created)
            for name in sorted(set(branches)):
                entries.append(BucketEntry(bucket_name(repo.name, name, project), created))
        entries.sort(key=lambda e: e.name)
        return entries

    @s3_operation
    async def create_bucket(self, bucket: str) -> None:
        ref = parse_bucket(bucket)
        ref.check_writable()
        try:
            await self._branch_info(ref)
        except pfs_errors.NotFound:
            pass
        else:
            raise errors.BucketAlreadyOwnedByYou(resource=bucket, extra={"BucketName": bucket})
        try:
            await self._client.create_repo(ref.pfs_repo())
        except pfs_errors.AlreadyExists:
            pass
        except pfs_errors.ProjectNotFound:
            try:
                await self._client.create_project(ref.project)
            except pfs_errors.AlreadyExists:
                pass
            try:
                await self._client.create_repo(ref.pfs_repo())
            except pfs_errors.AlreadyExists:
                pass
        await self._client.create_branch(ref.pfs_branch())

    @s3_operation
    async def delete_bucket(self, bucket: str) -> None:
        ref = parse_bucket(bucket)
        ref.check_writable()
        last = await self._last_finished(ref)
        if last:
            try:
                top = await self._client.list_files(refs.file(ref.at(last), "/"), number=1)
            except pfs_errors.FileNotFound:
                top = []
            if top:
                raise errors.BucketNotEmpty(resource=bucket, extra={"BucketName": bucket})
        await self._client.delete_branch(ref.pfs_branch())
        try:
            repo_info = await self._client.inspect_repo(ref.pfs_repo())
        except pfs_errors.NotFound:
            return
        if not repo_info.branches and not await self._client.list_branches(ref.pfs_repo()):
            await self._client.delete_repo(ref.pfs_repo())

    @s3_operation
    async def head_bucket(self, bucket: str) -> None:
        ref = parse_bucket(bucket)
        await self._bucket_exists(ref)

    @s3_operation
    async def get_bucket_location(self, bucket: str) -> str:
        await self._bucket_exists(parse_bucket(bucket))
        return ""

    @s3_operation
    async def get_bucket_versioning(self, bucket: str) -> str:
        await self._bucket_exists(parse_bucket(bucket))
        return "Enabled"

    # objects ------------------------------------------------------------------

    @s3_operation
    async def put_object(
        self,
        bucket: str,
        key: str,
        body: IBodySource,
        metadata: ObjectMetadata,
        conditions: WriteConditions | None = None,
    ) -> WriteResult:
        """The body streams into the branch's open commit; a large one is staged first.

        A body over :data:`~pachs3gw.gateway.staging.STAGE_ABOVE` (or of
        unknown length) would hold the branch's commit -- and every other
        write of the branch -- for as long as it streams: it goes to the
        internal repo first, and the commit only copies it (metadata-only).
        """
        ref = parse_bucket(bucket)
        info = await self._writable(ref)
        path = await self._keys.write_path(self._client, ref.head(), key)
        await self._precheck(ref, key, path, conditions, info.head.id)
        client = self._client
        staged = None
        if self._staging.wanted(body):
            staged = await self._staging.stage(client, body)

        async def step(scope: Scope) -> Callable[[str], WriteResult]:
            await self._check_conditions(ref, scope.commit, key, path, conditions)
            if staged is not None:
                md5, checksums = staged.md5, staged.checksums
                await scope.modify(
                    client,
                    [pfs_client.set_commit(scope.commit), pfs_client.copy_file(path, staged.file)],
                )
            else:
                md5s: list[str] = []

                def requests() -> Iterator[pfs.ModifyFileRequest]:
                    # grpc's request-consumer thread.
                    yield pfs_client.set_commit(scope.commit)
                    yield from pfs_client.put_file(path, body.chunks())
                    md5s.append(body.md5_hex())

                await scope.modify(client, requests())
                md5, checksums = md5s[0], dict(body.checksums())
            return await self._recorded(
                scope, key, path, Record(etag=md5, metadata=metadata, checksums=checksums)
            )

        try:
            return await self._submit(ref, [path], step)
        finally:
            if staged is not None:
                await self._staging.release(client, staged)

    @s3_operation
    async def get_object(
        self, bucket: str, key: str, version_id: str | None
    ) -> IObjectReader:
        ref = parse_bucket(bucket)
        file, info, _ = await self._stat(ref, key, version_id)
        return PfsObjectReader(self._client, file, info)

    @s3_operation
    async def head_object(self, bucket: str, key: str, version_id: str | None) -> ObjectInfo:
        ref = parse_bucket(bucket)
        _, info, _ = await self._stat(ref, key, version_id)
        return info

    @s3_operation
    async def delete_object(
        self, bucket: str, key: str, version_id: str | None
    ) -> DeleteResult:
        """One commit removing the key: its ID is the delete marker's version ID.

        Deleting a key that is not there succeeds and makes no commit (S3).
        """
        ref = parse_bucket(bucket)
        if version_id:
            return await self._delete_version(ref, key, version_id)
        candidates = self._keys.read_paths(key)
        info = await self._writable(ref)
        last = await self._last_finished(ref, info.head.id)
        present = await self._files_among(ref.at(last), candidates) if last else []
        if not present:
            return DeleteResult(key=key)  # S3: deleting nothing succeeds, and no commit
        client = self._client

        async def step(scope: Scope) -> Callable[[str], DeleteResult]:
            doomed = await self._files_among(scope.commit, present)
            if not doomed:
                return lambda _: DeleteResult(key=key)  # deleted meanwhile
            await scope.modify(
                client,
                [pfs_client.set_commit(scope.commit)] + [pfs_client.delete_file(p) for p in doomed],
            )
            return lambda version: DeleteResult(key=key, version_id=version, delete_marker=True)

        return await self._submit(ref, present, step)

    async def _is_file(self, commit: pfs.Commit, path: str) -> bool:
        try:
            finfo = await self._client.inspect_file(refs.file(commit, path))
        except (pfs_errors.FileNotFound, pfs_errors.NotARegularFile, pfs_errors.InvalidName):
            return False
        return finfo.file_type != pfs.DIR

    async def _files_among(self, commit: pfs.Commit, paths: Sequence[str]) -> list[str]:
        """Which of ``paths`` are files at ``commit`` (checked concurrently)."""
        semaphore = DeferredSemaphore(DELETE_CHECK_CONCURRENCY)
        exists = await gatherResults(
            [semaphore.run(self._is_file, commit, path) for path in paths], consumeErrors=True
        )
        return [path for path, yes in zip(paths, exists) if yes]

    @s3_operation
    async def delete_objects(
        self, bucket: str, keys: Sequence[tuple[str, str | None]]
    ) -> Sequence[DeleteResult]:
        """All existing keys go in ONE commit; a request that deletes nothing makes none.

        Each key is checked first (concurrently), at the newest finished
        commit and again in the open commit: a key that is a PFS directory
        (``a`` while ``a/x`` exists) must not be deleted, since DeleteFile of
        a directory removes everything below it.
        """
        ref = parse_bucket(bucket)
        info = await self._writable(ref)
        results: dict[int, DeleteResult] = {}
        candidates: list[tuple[int, str, str]] = []
        versioned: list[tuple[int, str, str]] = []
        for i, (key, version_id) in enumerate(keys):
            if version_id:
                versioned.append((i, key, version_id))
                continue
            try:
                candidates.extend((i, key, path) for path in self._keys.read_paths(key))
            except errors.S3Error as e:
                results[i] = DeleteResult(key, None, e)
        for i, key, _ in candidates:
            results[i] = DeleteResult(key)
        last = await self._last_finished(ref, info.head.id) if candidates else None
        paths = sorted({path for _, _, path in candidates})
        present = await self._files_among(ref.at(last), paths) if last else []
        if present:
            client = self._client

            async def step(scope: Scope) -> Callable[[str], tuple[str, set[str]]]:
                doomed = await self._files_among(scope.commit, present)
                if doomed:
                    await scope.modify(
                        client,
                        [pfs_client.set_commit(scope.commit)]
                        + [pfs_client.delete_file(p) for p in doomed],
                    )
                return lambda version: (version, set(doomed))

            version, deleted = await self._submit(ref, present, step)
            for i, key, path in candidates:
                if path in deleted:
                    results[i] = DeleteResult(key, version, delete_marker=True)
        for i, key, version_id in versioned:
            # Only a latest delete marker can go (a commit restoring the version
            # before it); each such key is its own commit, after the others.
            try:
                results[i] = await self._delete_version(ref, key, version_id)
            except errors.S3Error as e:
                results[i] = DeleteResult(key, version_id, e)
        return [results[i] for i in range(len(keys))]

    @s3_operation
    async def copy_object(
        self,
        source: CopySource,
        bucket: str,
        key: str,
        metadata: ObjectMetadata | None,
        conditions: WriteConditions | None = None,
    ) -> WriteResult:
        ref = parse_bucket(bucket)
        check_key(key)  # a bad key fails before the source is read
        src_file, src_info, _ = await self._copy_source(source)
        if (
            metadata is None
            and source.version_id is None
            and parse_bucket(source.bucket).pfs_branch() == ref.pfs_branch()
            and source.key == key
        ):
            raise errors.copy_onto_itself()
        info = await self._writable(ref)
        path = await self._keys.write_path(self._client, ref.head(), key)
        await self._precheck(ref, key, path, conditions, info.head.id)
        # The source's ETag stays (S3 keeps it); REPLACE swaps the headers only.
        record = Record(
            etag=src_info.etag,
            metadata=src_info.metadata if metadata is None else metadata,
            checksums=dict(src_info.checksums),
            part_sizes=src_info.part_sizes,
            part_checksums=src_info.part_checksums,
        )
        client = self._client

        async def step(scope: Scope) -> Callable[[str], WriteResult]:
            await self._check_conditions(ref, scope.commit, key, path, conditions)
            await scope.modify(
                client, [pfs_client.set_commit(scope.commit), pfs_client.copy_file(path, src_file)]
            )
            return await self._recorded(scope, key, path, record)

        return await self._submit(ref, [path], step)

    @s3_operation
    async def list_objects(
        self, bucket: str, prefix: str, delimiter: str, start_after: str, max_keys: int
    ) -> ListPage:
        ref = parse_bucket(bucket)
        commit = await self._read_commit(ref, None)
        if commit is None:
            return ListPage(contents=(), common_prefixes=(), is_truncated=False)
        raw = await list_page(
            self._client, commit, prefix, delimiter, start_after, max_keys, self._keys
        )
        etags = await self._meta.etags(
            self._client, ref.project, ref.repo, [(k, f.hash) for k, f in raw.files], at=commit
        )
        contents = [
            ObjectSummary(
                key=k, size=f.size_bytes, etag=etag, last_modified=to_datetime(f.committed)
            )
            for (k, f), etag in zip(raw.files, etags)
        ]
        return ListPage(
            contents=contents,
            common_prefixes=raw.common_prefixes,
            is_truncated=raw.is_truncated,
            next_marker=raw.next_marker if raw.is_truncated else None,
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

    def backend_for(self, access_key: str | None) -> IBackend:
        """*Reactor thread.*"""
        client = self._client
        forward = self._authenticator is None or self._authenticator.enabled
        if access_key and forward:
            client = client.with_token(access_key)
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
