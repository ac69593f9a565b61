"""Object operations over PFS: an object is a file at the branch's newest finished commit.

Every write is one step inside an explicit commit of its branch, run by the
branch's writer (:mod:`pachs3gw.gateway.commits`): ModifyFile into the open
commit, InspectFile of what it wrote, its metadata record, and only then
FinishCommit and the answer, whose version ID is that commit. A write that
fails, or is cut off, leaves nothing visible. Reads pin the commit they
looked at (:meth:`BackendCore.stat <pachs3gw.gateway._core.BackendCore.stat>`).

Threads: every operation runs on the reactor thread. Request iterators
handed to ``modify_file`` (which pull ``body.chunks()``) run on grpc's
request-consumer thread; :class:`~pachs3gw.gateway.reader.PfsObjectReader`
is read on the HTTP layer's worker thread.
"""

from __future__ import annotations

from typing import Callable, Iterator, Sequence

from twisted.internet.defer import DeferredSemaphore, gatherResults

from pachs3gw.gateway._core import BackendCore
from pachs3gw.gateway._errors import s3_operation
from pachs3gw.gateway._pfsutil import to_datetime
from pachs3gw.gateway.buckets import BucketRef, parse_bucket
from pachs3gw.gateway.commits import Scope
from pachs3gw.gateway.keys import check_key
from pachs3gw.gateway.listing import list_page
from pachs3gw.gateway.metadata import Record
from pachs3gw.gateway.reader import PfsObjectReader
from pachs3gw.gateway.versions import VersionOps
from pachs3gw.pfs import client as pfs_client
from pachs3gw.pfs import errors as pfs_errors
from pachs3gw.pfs import refs
from pachs3gw.proto import pfs_v2_pb2 as pfs
from pachs3gw.s3 import errors
from pachs3gw.s3.interfaces import (
    CopySource,
    DeleteResult,
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
#: Bodies up to this size (decoded, known in advance) are read and verified on the
#: reactor thread (~0.1 ms) and share one ModifyFile with the commit's other small
#: bodies (``Scope.put_small``); larger ones stream in their own.
SMALL_BODY_BYTES = 64 << 10


class ObjectOps:
    """The object operations of one backend, over its core.

    DELETE ``?versionId=`` (alone or in DeleteObjects) is the versions' part
    (:meth:`VersionOps.delete_version`).
    """

    def __init__(self, core: BackendCore, versions: VersionOps) -> None:
        self._core = core
        self._versions = versions

    @s3_operation
    async def put_object(
        self,
        bucket: str,
        key: str,
        body: IBodySource,
        metadata: ObjectMetadata,
        conditions: WriteConditions | None = None,
    ) -> WriteResult:
        """The body joins the branch's commit only once it is all here.

        Every other write of the branch waits for the commit a body is sent
        into, so a body still on its way must not be in one (a client
        sending slowly would hold the whole bucket). A small body is waited
        for in memory (:meth:`IBodySource.arrived`); one over
        :data:`~pachs3gw.gateway.staging.STAGE_ABOVE`, of unknown length, or
        too big for the body's buffer goes to the internal repo first, and
        the commit only copies it (metadata-only).
        """
        ref = parse_bucket(bucket)
        core, client = self._core, self._core.client
        await core.writable(ref)
        path = await core.keys.write_path(client, ref.head(), key)
        await core.precheck(ref, key, path, conditions)
        staged = None
        if core.staging.wanted(body) or not await body.arrived():
            staged = await core.staging.stage(client, body)

        async def step(scope: Scope) -> Callable[[str], WriteResult]:
            await core.check_conditions(ref, scope.commit, key, path, conditions)
            if staged is not None:
                md5, checksums = staged.md5, staged.checksums
                await scope.modify(
                    client,
                    [pfs_client.set_commit(scope.commit), pfs_client.copy_file(path, staged.file)],
                )
            elif body.expected_length is not None and body.expected_length <= SMALL_BODY_BYTES:
                # All here and small: decoded and verified now (a bad body fails
                # its own write only), then sent with the commit's other small ones.
                chunks = list(body.chunks())
                md5, checksums = body.md5_hex(), dict(body.checksums())
                await scope.put_small(client, path, chunks)
            else:
                md5s: list[str] = []

                def requests() -> Iterator[pfs.ModifyFileRequest]:
                    # grpc's request-consumer thread.
                    yield pfs_client.set_commit(scope.commit)
                    yield from pfs_client.put_file(path, body.chunks())
                    md5s.append(body.md5_hex())

                await scope.modify(client, requests())
                md5, checksums = md5s[0], dict(body.checksums())
            return await core.recorded(
                scope, key, path, Record(etag=md5, metadata=metadata, checksums=checksums)
            )

        try:
            return await core.submit(ref, [path], step)
        finally:
            if staged is not None:
                await core.staging.release(client, staged)

    @s3_operation
    async def get_object(
        self, bucket: str, key: str, version_id: str | None
    ) -> IObjectReader:
        ref = parse_bucket(bucket)
        file, info, _ = await self._core.stat(ref, key, version_id)
        return PfsObjectReader(self._core.client, file, info)

    @s3_operation
    async def head_object(self, bucket: str, key: str, version_id: str | None) -> ObjectInfo:
        ref = parse_bucket(bucket)
        _, info, _ = await self._core.stat(ref, key, version_id)
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
            return await self._versions.delete_version(ref, key, version_id)
        candidates = self._core.keys.read_paths(key)
        await self._core.writable(ref)
        present = await self._files_at_head(ref, candidates)
        if not present:
            return DeleteResult(key=key)  # S3: deleting nothing succeeds, and no commit

        async def step(scope: Scope) -> Callable[[str], DeleteResult]:
            doomed = await self._files_among(scope.commit, present)
            if not doomed:
                return lambda _: DeleteResult(key=key)  # deleted meanwhile
            scope.delete(doomed)
            return lambda version: DeleteResult(key=key, version_id=version, delete_marker=True)

        return await self._core.submit(ref, present, step)

    async def _is_file(self, commit: pfs.Commit, path: str) -> bool:
        try:
            finfo = await self._core.client.inspect_file(refs.file(commit, path))
        except (pfs_errors.FileNotFound, pfs_errors.NotARegularFile, pfs_errors.InvalidName):
            return False
        return finfo.file_type != pfs.DIR

    async def _is_file_at_head(self, ref: BucketRef, path: str) -> bool:
        try:
            finfo, _ = await self._core.head_file(ref, path)
        except (
            pfs_errors.FileNotFound,
            pfs_errors.NotARegularFile,
            pfs_errors.InvalidName,
            pfs_errors.CommitNotFound,
        ):
            return False
        return finfo.file_type != pfs.DIR

    async def _files_at_head(self, ref: BucketRef, paths: Sequence[str]) -> list[str]:
        """Which of ``paths`` are files at the branch's newest finished commit (concurrently).

        One InspectFile each at the head (``BackendCore.head_file`` steps
        back from an open head): no InspectBranch first.
        """
        semaphore = DeferredSemaphore(DELETE_CHECK_CONCURRENCY)
        exists = await gatherResults(
            [semaphore.run(self._is_file_at_head, ref, path) for path in paths],
            consumeErrors=True,
        )
        return [path for path, yes in zip(paths, exists) if yes]

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
        await self._core.writable(ref)
        results: dict[int, DeleteResult] = {}
        candidates: list[tuple[int, str, str]] = []
        versioned: list[tuple[int, str, str]] = []
        for i, (key, version_id) in enumerate(keys):
            if version_id:
                versioned.append((i, key, version_id))
                continue
            try:
                candidates.extend((i, key, path) for path in self._core.keys.read_paths(key))
            except errors.S3Error as e:
                results[i] = DeleteResult(key, None, e)
        for i, key, _ in candidates:
            results[i] = DeleteResult(key)
        paths = sorted({path for _, _, path in candidates})
        present = await self._files_at_head(ref, paths)
        if present:

            async def step(scope: Scope) -> Callable[[str], tuple[str, set[str]]]:
                doomed = await self._files_among(scope.commit, present)
                scope.delete(doomed)
                return lambda version: (version, set(doomed))

            version, deleted = await self._core.submit(ref, present, step)
            for i, key, path in candidates:
                if path in deleted:
                    results[i] = DeleteResult(key, version, delete_marker=True)
        for i, key, version_id in versioned:
            # Only a latest delete marker can go (a commit restoring the version
            # before it); each such key is its own commit, after the others.
            try:
                results[i] = await self._versions.delete_version(ref, key, version_id)
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
        core, client = self._core, self._core.client
        check_key(key)  # a bad key fails before the source is read
        src_file, src_info, _ = await core.copy_source(source)
        if (
            metadata is None
            and source.version_id is None
            and parse_bucket(source.bucket).pfs_branch() == ref.pfs_branch()
            and source.key == key
        ):
            raise errors.copy_onto_itself()
        await core.writable(ref)
        path = await core.keys.write_path(client, ref.head(), key)
        await core.precheck(ref, key, path, conditions)
        # The source's ETag stays (S3 keeps it); REPLACE swaps the headers only.
        record = Record(
            etag=src_info.etag,
            metadata=src_info.metadata if metadata is None else metadata,
            checksums=dict(src_info.checksums),
            part_sizes=src_info.part_sizes,
            part_checksums=src_info.part_checksums,
        )

        async def step(scope: Scope) -> Callable[[str], WriteResult]:
            await core.check_conditions(ref, scope.commit, key, path, conditions)
            await scope.modify(
                client, [pfs_client.set_commit(scope.commit), pfs_client.copy_file(path, src_file)]
            )
            return await core.recorded(scope, key, path, record)

        return await core.submit(ref, [path], step)

    @s3_operation
    async def list_objects(
        self, bucket: str, prefix: str, delimiter: str, start_after: str, max_keys: int
    ) -> ListPage:
        ref = parse_bucket(bucket)
        core, client = self._core, self._core.client
        commit = await core.read_commit(ref, None)
        if commit is None:
            return ListPage(contents=(), common_prefixes=(), is_truncated=False)
        raw = await list_page(
            client, commit, prefix, delimiter, start_after, max_keys, core.keys
        )
        etags = await core.meta.etags(
            client, ref.project, ref.repo, [(k, f.hash) for k, f in raw.files], at=commit
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


__all__ = ["DELETE_CHECK_CONCURRENCY", "SMALL_BODY_BYTES", "ObjectOps"]
