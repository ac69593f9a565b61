"""What every part of the PFS backend shares: the caller's client and the helpers.

:class:`BackendCore` holds the per-request state (the caller's
:class:`PfsClient`) and the shared state (metadata store, multipart settings),
and the helpers the bucket/object, multipart and versions halves all use:
bucket checks, the commit a read looks at, the file a write made.

Threads: reactor thread only.
"""

from __future__ import annotations

from typing import Any

import attrs
from twisted.python.threadpool import ThreadPool

from pachs3gw.gateway._errors import Context, to_s3_error
from pachs3gw.gateway._pfsutil import to_datetime
from pachs3gw.gateway.buckets import BucketRef, parse_bucket
from pachs3gw.gateway.history import HistoryCache
from pachs3gw.gateway.keys import KeyPaths
from pachs3gw.gateway.metadata import MetadataStore, Record
from pachs3gw.pfs import errors as pfs_errors
from pachs3gw.pfs import refs
from pachs3gw.pfs.client import PfsClient
from pachs3gw.proto import pfs_v2_pb2 as pfs
from pachs3gw.s3 import errors
from pachs3gw.s3.interfaces import CopySource, ObjectInfo, WriteResult
from pachs3gw.s3.limits import MIN_PART_SIZE

#: How far back ``?versionId=`` looks for a commit made on another branch
#: before giving up with NoSuchVersion.
VERSION_SEARCH_LIMIT = 10000


@attrs.define
class MultipartState:
    """What the backends of one factory share about multipart uploads."""

    min_part_size: int = MIN_PART_SIZE
    repo_ready: bool = False


class BackendCore:
    """The caller's client, the shared stores, and helpers (see the module doc)."""

    def __init__(
        self,
        client: PfsClient,
        reactor: Any = None,
        pool: ThreadPool | None = None,
        metadata: MetadataStore | None = None,
        multipart: MultipartState | None = None,
        histories: HistoryCache | None = None,
        keys: KeyPaths | None = None,
    ) -> None:
        self._client = client
        self._reactor = reactor if reactor is not None else client.reactor
        self._pool = pool if pool is not None else client.pool
        self._meta = metadata if metadata is not None else MetadataStore(self._reactor, self._pool)
        self._mp = multipart if multipart is not None else MultipartState()
        self._histories = histories if histories is not None else HistoryCache()
        self._keys = keys if keys is not None else KeyPaths()

    # helpers ------------------------------------------------------------------

    async def _branch_info(self, ref: BucketRef) -> pfs.BranchInfo:
        return await self._client.inspect_branch(ref.pfs_branch())

    async def _writable(self, ref: BucketRef) -> pfs.BranchInfo:
        """Check a bucket exists and takes writes, before any body is read."""
        ref.check_writable()
        info = await self._branch_info(ref)
        if info.provenance or info.direct_provenance:
            raise errors.AccessDenied(
                f"Bucket {ref.name} is the output branch {ref.label} (it has provenance): "
                "it is written by its pipeline and is read-only here.",
                resource=ref.name,
            )
        return info

    async def _read_commit(self, ref: BucketRef, version_id: str | None) -> pfs.Commit | None:
        """The fixed commit a read looks at (None: the branch has no commit yet)."""
        if version_id:
            await self._check_version(ref, version_id)
            return ref.at(version_id)
        if ref.commit_id is not None:
            await self._client.inspect_commit(ref.head())
            return ref.head()
        info = await self._branch_info(ref)
        if not info.head.id:
            return None
        return ref.at(info.head.id)

    async def _check_version(self, ref: BucketRef, version_id: str) -> None:
        """NoSuchVersion unless ``version_id`` is a commit in the branch's history."""
        context = Context(bucket=ref.name, version_id=version_id)
        no_such = errors.NoSuchVersion(extra={"VersionId": version_id})
        if len(version_id) != 32 or any(c not in "0123456789abcdef" for c in version_id):
            raise no_such
        try:
            info = await self._client.inspect_commit(ref.at(version_id))
        except pfs_errors.NotFound as e:
            if isinstance(e, pfs_errors.CommitNotFound):
                raise no_such from None
            raise to_s3_error(e, context) from None
        if info.commit.repo.name and info.commit.repo.name != ref.repo:
            raise no_such
        if info.commit.branch.name == ref.branch:
            return
        # Made on another branch: it counts if it is an ancestor of this
        # branch's head (the branch was created from it).
        tip = ref.head() if ref.commit_id is not None else refs.branch_head(
            ref.repo, ref.branch, ref.project
        )
        history = await self._client.list_commits(
            ref.pfs_repo(), to=tip, number=VERSION_SEARCH_LIMIT
        )
        if not any(c.commit.id == version_id for c in history):
            raise no_such

    async def _after_write(self, ref: BucketRef, path: str) -> tuple[str, pfs.FileInfo]:
        """The commit a write made and the file it wrote there.

        The write went to the branch head (auto-commit), and PFS does not
        return the commit it made, so this reads the head right after. If
        another writer commits to the same branch in between, the version ID
        is that later commit -- still a commit holding our object unless the
        other writer overwrote the same key, in which case the ETag/metadata
        recorded here describe their bytes' hash and will simply not match
        (they fall back to the PFS hash). Explicit StartCommit/FinishCommit
        would avoid this, at the price of leaving an open commit behind when
        the gateway dies mid-write and making concurrent writers share it.
        """
        info = await self._client.inspect_file(refs.file(ref.head(), path))
        head = info.file.commit.id or (await self._branch_info(ref)).head.id
        return head, info

    def _info(
        self, key: str, finfo: pfs.FileInfo, record: Record, version_id: str | None
    ) -> ObjectInfo:
        return ObjectInfo(
            key=key,
            size=finfo.size_bytes,
            etag=record.etag,
            last_modified=to_datetime(finfo.committed),
            version_id=version_id,
            metadata=record.metadata,
            checksums=dict(record.checksums),
            part_sizes=record.part_sizes,
            part_checksums=record.part_checksums,
        )

    async def _stat(
        self, ref: BucketRef, key: str, version_id: str | None
    ) -> tuple[pfs.File, ObjectInfo, Record]:
        """InspectFile (plus the metadata record): the file pinned to the commit read.

        At a branch head this is one InspectFile: PFS answers with the
        resolved commit ID, which becomes the version ID and pins later reads
        (a concurrent overwrite cannot mix into a GET).
        """
        paths = self._keys.read_paths(key)
        no_such_key = errors.NoSuchKey(resource=key, extra={"Key": key})
        for n, path in enumerate(paths):
            # Two candidates only while the server's path rules are unknown.
            try:
                commit, finfo = await self._inspect_at(ref, version_id, path, no_such_key)
            except (pfs_errors.FileNotFound, pfs_errors.InvalidName):
                if n + 1 == len(paths):
                    raise
                continue
            if finfo.file_type != pfs.DIR:
                self._keys.found(key, path)
                break
            if n + 1 == len(paths):
                raise no_such_key
        record = await self._meta.get(self._client, ref.project, ref.repo, key, finfo.hash)
        return refs.file(commit, path), self._info(key, finfo, record, commit.id), record

    async def _inspect_at(
        self, ref: BucketRef, version_id: str | None, path: str, no_such_key: errors.S3Error
    ) -> tuple[pfs.Commit, pfs.FileInfo]:
        if version_id or ref.commit_id is not None:
            commit = await self._read_commit(ref, version_id)
            assert commit is not None
            return commit, await self._client.inspect_file(refs.file(commit, path))
        try:
            finfo = await self._client.inspect_file(refs.file(ref.head(), path))
        except pfs_errors.CommitNotFound:
            raise no_such_key from None  # a branch without commits
        commit_id = finfo.file.commit.id or (await self._branch_info(ref)).head.id
        return ref.at(commit_id), finfo

    async def _bucket_exists(self, ref: BucketRef) -> None:
        if ref.commit_id is not None:
            await self._branch_info(ref)
            await self._client.inspect_commit(ref.head())
        else:
            await self._branch_info(ref)

    async def _record_write(
        self, ref: BucketRef, key: str, path: str, record: Record
    ) -> WriteResult:
        """After a data commit: find it, then store the metadata (second commit)."""
        version, finfo = await self._after_write(ref, path)
        await self._meta.put(self._client, ref.project, ref.repo, [(key, finfo.hash, record)])
        return WriteResult(
            etag=record.etag,
            version_id=version,
            last_modified=to_datetime(finfo.committed),
            checksums=dict(record.checksums),
        )

    async def _copy_source(self, source: CopySource) -> tuple[pfs.File, ObjectInfo, Record]:
        """The fixed-commit file and info of a copy source (errors name the source)."""
        ref = parse_bucket(source.bucket)
        context = Context(bucket=source.bucket, key=source.key, version_id=source.version_id)
        try:
            return await self._stat(ref, source.key, source.version_id)
        except pfs_errors.PfsError as e:
            raise to_s3_error(e, context) from None
