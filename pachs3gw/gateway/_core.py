"""What every part of the PFS backend shares: the caller's client and the helpers.

:class:`BackendCore` holds the per-request state (the caller's
:class:`PfsClient`) and the shared state (metadata store, branch writers,
commit tracker, key paths, histories, staging, multipart settings), and the
helpers the bucket, object, versions and multipart parts all use
(:mod:`~pachs3gw.gateway.bucket_ops`, :mod:`~pachs3gw.gateway.objects`,
:mod:`~pachs3gw.gateway.versions`, :mod:`~pachs3gw.gateway.multipart`,
:mod:`~pachs3gw.gateway.multipart_listing`; each holds the one core of its
backend): bucket checks, the commit a read looks at, reading an object at a
version, write preconditions, and handing a write to its branch's writer.

Reads never look at an open commit: a write's commit is open while its
bytes and metadata are written, and one abandoned by a dead writer stays
open until the next writer discards it. A read at a branch head therefore
uses the head only if it is known finished (:class:`CommitTracker`: every
commit this process finished, and those a read checked), else its parent
(the parent of an open commit is always finished).

Threads: reactor thread only.
"""

from __future__ import annotations

from typing import Callable, Iterable, TypeVar, cast

import attrs
from twisted.internet.defer import Deferred
from twisted.python.threadpool import ThreadPool

from pachs3gw.gateway._errors import Context, to_s3_error
from pachs3gw.gateway._pfsutil import read_bytes, to_datetime
from pachs3gw.gateway.buckets import BucketRef, parse_bucket
from pachs3gw.gateway.commits import CommitTracker, Scope, Step, Writers
from pachs3gw.gateway.history import BranchHistory, HistoryCache
from pachs3gw.gateway.keys import KeyPaths
from pachs3gw.gateway.metadata import MetadataStore, Record
from pachs3gw.gateway.staging import Staging
from pachs3gw.pfs import errors as pfs_errors
from pachs3gw.pfs import refs
from pachs3gw.pfs.client import PfsClient
from pachs3gw.proto import pfs_v2_pb2 as pfs
from pachs3gw.s3 import errors
from pachs3gw.s3.conditions import check_write_conditions
from pachs3gw.s3.http_interfaces import IS3Reactor
from pachs3gw.s3.interfaces import CopySource, ObjectInfo, WriteConditions, WriteResult
from pachs3gw.s3.limits import MIN_PART_SIZE

T = TypeVar("T")

#: How far back ``?versionId=`` looks for a commit made on another branch
#: before giving up with NoSuchVersion.
VERSION_SEARCH_LIMIT = 10000


def client_reactor(client: PfsClient) -> IS3Reactor:
    """The reactor of ``client``, for a backend (or factory) given none.

    :class:`PfsClient` types it by the one thing it needs of it (calls from
    threads); it is the application's reactor, whose clock the branch
    writers use too.
    """
    return cast(IS3Reactor, client.reactor)


def _no_such_key(key: str) -> errors.S3Error:
    """Made only when raised: an S3Error costs microseconds every HEAD would pay."""
    return errors.NoSuchKey(resource=key, extra={"Key": key})


@attrs.define
class MultipartState:
    """What the backends of one factory share about multipart uploads."""

    min_part_size: int = MIN_PART_SIZE
    repo_ready: bool = False


class BackendCore:
    """The caller's client, the shared stores, and helpers (see the module doc).

    One per backend, i.e. per request: the shared objects come from the
    factory (each defaults to a fresh one, for tests).
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
        self.client = client
        self.reactor = reactor if reactor is not None else client_reactor(client)
        self.pool = pool if pool is not None else client.pool
        self.meta = metadata if metadata is not None else MetadataStore(self.reactor, self.pool)
        self.multipart = multipart if multipart is not None else MultipartState()
        self.histories = histories if histories is not None else HistoryCache()
        self.keys = keys if keys is not None else KeyPaths()
        self.writers = (
            writers if writers is not None else Writers(self.reactor, self.meta, CommitTracker())
        )
        self.commits = self.writers.tracker
        self.staging = staging if staging is not None else Staging()

    # helpers ------------------------------------------------------------------

    def read_bytes(self, file: pfs.File) -> Deferred[bytes]:
        """The whole content of a small file (drained in the worker pool)."""
        return read_bytes(self.client, self.reactor, self.pool, file)

    async def branch_info(self, ref: BucketRef) -> pfs.BranchInfo:
        return await self.client.inspect_branch(ref.pfs_branch())

    async def writable(self, ref: BucketRef) -> None:
        """Check a bucket exists and takes writes, before any body is read.

        A yes is remembered briefly (``Writers.known_writable``), so most
        writes of a busy bucket make no call here.
        """
        ref.check_writable()
        token = self.client.token
        if self.writers.known_writable(token, ref):
            return
        info = await self.branch_info(ref)
        if info.provenance or info.direct_provenance:
            raise errors.AccessDenied(
                f"Bucket {ref.name} is the output branch {ref.label} (it has provenance): "
                "it is written by its pipeline and is read-only here.",
                resource=ref.name,
            )
        self.writers.seen_writable(token, ref)

    async def read_commit(self, ref: BucketRef, version_id: str | None) -> pfs.Commit | None:
        """The fixed commit a read looks at (None: the branch has no commit yet)."""
        if version_id:
            await self.check_version(ref, version_id)
            return ref.at(version_id)
        if ref.commit_id is not None:
            await self.client.inspect_commit(ref.head())
            return ref.head()
        commit_id = await self.last_finished(ref)
        return ref.at(commit_id) if commit_id else None

    async def last_finished(self, ref: BucketRef, head: str | None = None) -> str | None:
        """The branch's newest finished commit (None: it has none yet).

        ``head``: the branch's head as an InspectBranch just said, if the caller has it.
        """
        if head is None:
            head = (await self.branch_info(ref)).head.id
        if not head:
            return None
        return await self._finished_at_or_before(ref, head) or None

    async def _finished_at_or_before(self, ref: BucketRef, commit_id: str) -> str:
        """``commit_id`` if it is finished, else its parent ("" if it has none)."""
        if self.commits.is_finished(commit_id):
            return commit_id
        parent = self.commits.parent_of(commit_id)
        if parent is not None:
            return parent
        info = await self.client.inspect_commit(ref.at(commit_id))
        if info.HasField("finishing") or info.HasField("finished"):
            self.commits.mark_finished(commit_id)
            return commit_id
        # PFS starts a commit only on a finished parent.
        parent = info.parent_commit.id
        self.commits.remember_parent(commit_id, parent)
        return parent

    async def check_version(self, ref: BucketRef, version_id: str) -> None:
        """NoSuchVersion unless ``version_id`` is a commit in the branch's history."""
        context = Context(bucket=ref.name, version_id=version_id)
        no_such = errors.NoSuchVersion(extra={"VersionId": version_id})
        if len(version_id) != 32 or any(c not in "0123456789abcdef" for c in version_id):
            raise no_such
        try:
            info = await self.client.inspect_commit(ref.at(version_id))
        except pfs_errors.NotFound as e:
            if isinstance(e, pfs_errors.CommitNotFound):
                raise no_such from None
            raise to_s3_error(e, context) from None
        if info.commit.repo.name and info.commit.repo.name != ref.repo:
            raise no_such
        if not (info.HasField("finishing") or info.HasField("finished")):
            raise no_such  # a write in progress (or abandoned): not a version yet
        self.commits.mark_finished(version_id)
        if info.commit.branch.name == ref.branch:
            return
        # Made on another branch: it counts if it is an ancestor of this
        # branch's head (the branch was created from it).
        tip = ref.head() if ref.commit_id is not None else refs.branch_head(
            ref.repo, ref.branch, ref.project
        )
        history = await self.client.list_commits(
            ref.pfs_repo(), to=tip, number=VERSION_SEARCH_LIMIT
        )
        if not any(c.commit.id == version_id for c in history):
            raise no_such

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

    async def branch_history(self, ref: BucketRef) -> BranchHistory | None:
        """The history up to the bucket's head (None: the branch has no commit yet).

        The caller's access is checked by PFS first (InspectBranch/InspectCommit
        with the caller's token): the cache is shared by all callers.
        """
        if ref.commit_id is not None:
            await self.bucket_exists(ref)
            head: str | None = ref.commit_id
        else:
            head = await self.last_finished(ref)
        if not head:
            return None
        return await self.histories.history(self.client, ref, head)

    async def stat(
        self, ref: BucketRef, key: str, version_id: str | None
    ) -> tuple[pfs.File, ObjectInfo, Record]:
        """InspectFile (plus the metadata record): the file pinned to the commit read.

        At a branch head this is one InspectFile: PFS answers with the
        resolved commit ID, which becomes the version ID and pins later reads
        (a concurrent overwrite cannot mix into a GET). A version ID that is
        the key's delete marker is MethodNotAllowed with
        ``x-amz-delete-marker: true``, as S3 answers.
        """
        try:
            return await self._stat(ref, key, version_id)
        except pfs_errors.FileNotFound:
            if not version_id:
                raise
            history = await self.branch_history(ref)
            changes = history.by_key.get(key, []) if history is not None else []
            if any(c.commit_id == version_id and c.is_delete_marker for c in changes):
                raise errors.MethodNotAllowed(
                    "The specified method is not allowed against this resource: the version "
                    "is a delete marker.",
                    resource=key,
                    headers={"x-amz-delete-marker": "true", "x-amz-version-id": version_id},
                ) from None
            raise

    async def _stat(
        self, ref: BucketRef, key: str, version_id: str | None
    ) -> tuple[pfs.File, ObjectInfo, Record]:
        paths = self.keys.read_paths(key)
        for n, path in enumerate(paths):
            # Two candidates only while the server's path rules are unknown.
            try:
                commit, finfo = await self._inspect_at(ref, version_id, path, key)
            except (pfs_errors.FileNotFound, pfs_errors.InvalidName):
                if n + 1 == len(paths):
                    raise
                continue
            if finfo.file_type != pfs.DIR:
                self.keys.found(key, path)
                break
            if n + 1 == len(paths):
                raise _no_such_key(key)
        record = await self.meta.get(
            self.client, ref.project, ref.repo, key, finfo.hash, at=commit
        )
        return refs.file(commit, path), self._info(key, finfo, record, commit.id), record

    async def _inspect_at(
        self, ref: BucketRef, version_id: str | None, path: str, key: str
    ) -> tuple[pfs.Commit, pfs.FileInfo]:
        if version_id or ref.commit_id is not None:
            commit = await self.read_commit(ref, version_id)
            assert commit is not None
            return commit, await self.client.inspect_file(refs.file(commit, path))
        try:
            finfo, commit = await self.head_file(ref, path)
        except pfs_errors.CommitNotFound:
            raise _no_such_key(key) from None  # a branch without (finished) commits
        return commit, finfo

    async def head_file(self, ref: BucketRef, path: str) -> tuple[pfs.FileInfo, pfs.Commit]:
        """InspectFile at the branch's newest finished commit, and that commit.

        Usually one call: the head (PFS answers with the commit it resolved),
        known finished. While this process's writer holds the head open, its
        parent is read directly; an open head of another writer costs an
        InspectCommit and a second InspectFile.
        """
        open_id = self.commits.open_commit(ref)
        if open_id is not None:
            parent = self.commits.parent_of(open_id)
            finfo = await self.client.inspect_file(
                refs.file(ref.at(parent or open_id + "^"), path)
            )
            resolved = finfo.file.commit.id
            if len(resolved) != 32 or resolved == open_id:
                resolved = await self._finished_at_or_before(ref, open_id)
            return finfo, ref.at(resolved)
        try:
            finfo = await self.client.inspect_file(refs.file(ref.head(), path))
        except pfs_errors.FileNotFound:
            # Absent at the head: the answer unless the head is open (a
            # deletion in flight, or abandoned) and its parent has the file.
            head = (await self.branch_info(ref)).head.id
            last = await self._finished_at_or_before(ref, head) if head else ""
            if last == head or not last:
                raise
            return await self.client.inspect_file(refs.file(ref.at(last), path)), ref.at(last)
        commit_id = finfo.file.commit.id or (await self.branch_info(ref)).head.id
        last = await self._finished_at_or_before(ref, commit_id)
        if last == commit_id:
            return finfo, ref.at(commit_id)
        if not last:
            raise pfs_errors.CommitNotFound(f"branch {ref.label} has no finished commit")
        return await self.client.inspect_file(refs.file(ref.at(last), path)), ref.at(last)

    async def bucket_exists(self, ref: BucketRef) -> None:
        if ref.commit_id is not None:
            await self.branch_info(ref)
            await self.client.inspect_commit(ref.head())
        else:
            await self.branch_info(ref)

    def submit(self, ref: BucketRef, paths: Iterable[str], step: Step[T]) -> Deferred[T]:
        """Run a write's ``step`` inside the next commit of its branch (see ``commits``)."""
        return self.writers.submit(ref, self.client, frozenset(paths), step)

    async def recorded(
        self, scope: Scope, key: str, path: str, record: Record
    ) -> Callable[[str], WriteResult]:
        """After a step's ModifyFile of ``path``: its content hash, its record, its answer."""
        finfo = await self.client.inspect_file(refs.file(scope.commit, path))
        scope.record(key, finfo.hash, record)
        committed = to_datetime(finfo.committed)

        def result(version: str) -> WriteResult:
            return WriteResult(
                etag=record.etag,
                version_id=version,
                last_modified=committed,
                checksums=dict(record.checksums),
            )

        return result

    async def _current_etag(
        self, ref: BucketRef, commit: pfs.Commit | None, key: str, path: str
    ) -> str | None:
        """The ETag of ``key`` at ``commit`` (None: no such object)."""
        if commit is None:
            return None
        try:
            finfo = await self.client.inspect_file(refs.file(commit, path))
        except (
            pfs_errors.FileNotFound,
            pfs_errors.NotARegularFile,
            pfs_errors.CommitNotFound,
            pfs_errors.InvalidName,
        ):
            return None
        if finfo.file_type == pfs.DIR:
            return None
        record = await self.meta.get(
            self.client, ref.project, ref.repo, key, finfo.hash, at=commit
        )
        return record.etag

    async def check_conditions(
        self,
        ref: BucketRef,
        commit: pfs.Commit | None,
        key: str,
        path: str,
        conditions: WriteConditions | None,
    ) -> None:
        """PreconditionFailed / NoSuchKey unless ``conditions`` hold for ``key`` at ``commit``.

        Called twice per conditional write: before anything is sent, at the
        newest finished commit (a refused write reads no body and opens no
        commit), and inside the write's own open commit, where the answer
        cannot change before the commit finishes: that check is the one
        that counts, so two racing ``If-None-Match: *`` writers cannot both
        win.
        """
        if conditions is None:
            return
        etag = await self._current_etag(ref, commit, key, path)
        check_write_conditions(conditions, key, etag)

    async def precheck(
        self,
        ref: BucketRef,
        key: str,
        path: str,
        conditions: WriteConditions | None,
        head: str | None = None,
    ) -> None:
        if conditions is None:
            return
        last = await self.last_finished(ref, head)
        await self.check_conditions(ref, ref.at(last) if last else None, key, path, conditions)

    async def copy_source(self, source: CopySource) -> tuple[pfs.File, ObjectInfo, Record]:
        """The fixed-commit file and info of a copy source (errors name the source)."""
        ref = parse_bucket(source.bucket)
        context = Context(bucket=source.bucket, key=source.key, version_id=source.version_id)
        try:
            return await self.stat(ref, source.key, source.version_id)
        except pfs_errors.PfsError as e:
            raise to_s3_error(e, context) from None
