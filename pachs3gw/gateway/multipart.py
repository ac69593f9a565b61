"""Multipart uploads: parts in the internal repo ``_s3gateway_multipart_``.

The layout (uploads, parts with their ETags and checksums, the index,
completion records) is in :mod:`pachs3gw.gateway._mplayout`; the listings
(ListParts, ListMultipartUploads) in :mod:`pachs3gw.gateway.multipart_listing`.

- Complete = one ModifyFile into the destination branch's next commit (the
  branch writer's, see :mod:`pachs3gw.gateway.commits`): DeleteFile(key) and
  CopyFile(key, part, append=True) per part, all from one fixed commit of the
  internal repo: one atomic commit, and no data through the gateway. Then the
  upload's files are deleted from the internal repo and its completion record
  written (one commit): a retried Complete answers the same result.
- An upload created with a checksum algorithm keeps each part's verified
  checksum; Complete gives the object S3's composite checksum
  (``base64(H(part checksums))-N``), which HEAD/GET return with
  ``ChecksumMode=ENABLED``.
- UploadPartCopy of a whole object whose MD5 is recorded is a CopyFile too.
  With ``x-amz-copy-source-range`` (or when the source's MD5 is unknown, e.g.
  a file written by pachctl) the bytes stream through the gateway -- PFS
  CopyFile copies whole files only, and the part's ETag must be its MD5.

Threads: all methods run on the reactor thread; the request iterators run on
grpc's request-consumer thread.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import datetime, timezone
from typing import Callable, Iterator, Sequence

from twisted.logger import Logger

from pachs3gw.gateway import _mplayout as layout
from pachs3gw.gateway._core import MIN_PART_SIZE, BackendCore, MultipartState
from pachs3gw.gateway.commits import Scope
from pachs3gw.gateway._errors import s3_operation
from pachs3gw.gateway._mplayout import (
    MULTIPART_BRANCH,
    MULTIPART_REPO,
    CompletionRecord,
    Part,
    UploadRecord,
    mp_head,
)
from pachs3gw.gateway._pfsutil import ensure_repo
from pachs3gw.gateway.buckets import BucketRef, parse_bucket
from pachs3gw.gateway.keys import check_key
from pachs3gw.gateway.metadata import Record
from pachs3gw.pfs import client as pfs_client
from pachs3gw.pfs import errors as pfs_errors
from pachs3gw.pfs import refs
from pachs3gw.proto import pfs_v2_pb2 as pfs
from pachs3gw.s3 import errors
from pachs3gw.s3.checksums import composite_checksum
from pachs3gw.s3.conditions import normalize_etag
from pachs3gw.s3.limits import MAX_PART_NUMBER
from pachs3gw.s3.interfaces import (
    CompletedPart,
    CopySource,
    IBodySource,
    ObjectMetadata,
    WriteConditions,
    WriteResult,
)

log = Logger()

_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
_MD5 = re.compile(r"^[0-9a-f]{32}$")


class MultipartOps:
    """Create, upload parts, complete and abort, for one backend, over its core.

    The listings (:class:`~pachs3gw.gateway.multipart_listing.MultipartListingOps`)
    read upload records through :meth:`upload` and :meth:`list_upload`.
    """

    def __init__(self, core: BackendCore) -> None:
        self._core = core

    # upload records -------------------------------------------------------

    async def _ensure_mp_repo(self) -> None:
        if not self._core.multipart.repo_ready:
            await ensure_repo(self._core.client, MULTIPART_REPO, MULTIPART_BRANCH)
            self._core.multipart.repo_ready = True

    async def upload(self, ref: BucketRef, key: str, upload_id: str) -> UploadRecord:
        """The upload's record; NoSuchUpload unless it exists for this bucket and key."""
        no_such = errors.NoSuchUpload(extra={"UploadId": upload_id})
        if not _UPLOAD_ID.match(upload_id):
            raise no_such
        file = refs.file(mp_head(), layout.upload_dir(upload_id) + "upload.json")
        try:
            record = UploadRecord.from_json(
                await self._core.read_bytes(file)
            )
        except (pfs_errors.NotFound, pfs_errors.NotARegularFile):
            raise no_such from None
        if (record.project, record.repo, record.branch, record.key) != (
            ref.project,
            ref.repo,
            ref.branch,
            key,
        ):
            raise no_such
        return record

    async def list_upload(
        self,
        upload_id: str,
        at: pfs.Commit | None = None,
        after: str | None = None,
        number: int = 0,
    ) -> list[pfs.FileInfo]:
        """The upload's files at ``at`` (default: the head), from strictly ``after``."""
        try:
            return await self._core.client.list_files(
                refs.file(at or mp_head(), layout.upload_dir(upload_id)), after=after, number=number
            )
        except pfs_errors.NotFound:
            raise errors.NoSuchUpload(extra={"UploadId": upload_id}) from None

    async def _discard(
        self,
        ref: BucketRef,
        key: str,
        upload_id: str,
        files: Sequence[pfs.FileInfo],
        completion: CompletionRecord | None = None,
    ) -> None:
        """Delete an upload's files and index entry, keep its completion record (one commit)."""
        requests = [pfs_client.set_commit(mp_head())]
        requests += [pfs_client.delete_file(info.file.path) for info in files]
        requests.append(pfs_client.delete_file(layout.index_path(ref, key, upload_id)))
        if completion is not None:
            path = layout.completion_path(upload_id)
            requests.append(pfs_client.delete_file(path))
            requests.append(pfs_client.add_bytes(path, completion.to_json()))
        await self._core.client.modify_file(requests)

    async def _completion(self, upload_id: str) -> CompletionRecord | None:
        """The record of an upload that completed (None if it never did)."""
        if not _UPLOAD_ID.match(upload_id):
            return None
        file = refs.file(mp_head(), layout.completion_path(upload_id))
        try:
            data = await self._core.read_bytes(file)
        except (pfs_errors.NotFound, pfs_errors.NotARegularFile):
            return None
        try:
            return CompletionRecord.from_json(data)
        except (ValueError, KeyError, TypeError):
            log.warn("ignoring malformed completion record of upload {upload_id}", upload_id=upload_id)
            return None

    # create / parts -----------------------------------------------------------

    @s3_operation
    async def create_multipart_upload(
        self,
        bucket: str,
        key: str,
        metadata: ObjectMetadata,
        checksum_algorithm: str | None = None,
    ) -> str:
        ref = parse_bucket(bucket)
        check_key(key)
        await self._core.writable(ref)
        await self._ensure_mp_repo()
        upload_id = uuid.uuid4().hex
        record = UploadRecord(
            project=ref.project,
            repo=ref.repo,
            branch=ref.branch,
            key=key,
            metadata=metadata,
            initiated=datetime.now(timezone.utc).isoformat(),
            checksum_algorithm=checksum_algorithm,
        )
        await self._core.client.modify_file(
            [
                pfs_client.set_commit(mp_head()),
                pfs_client.add_bytes(layout.upload_dir(upload_id) + "upload.json", record.to_json()),
                pfs_client.add_empty(layout.index_path(ref, key, upload_id)),
            ]
        )
        return upload_id

    async def _old_part_markers(self, upload_id: str, number: int) -> list[str]:
        """ETag files of an earlier upload of the same part number (to replace)."""
        path = layout.part_path(upload_id, number)
        infos = await self.list_upload(upload_id, after=path, number=8)
        return [
            i.file.path for i in infos if i.file.path.startswith(path + ".")
        ]

    @staticmethod
    def _check_part_number(part_number: int) -> None:
        if not 1 <= part_number <= MAX_PART_NUMBER:
            raise errors.InvalidArgument(
                f"Part number must be an integer between 1 and {MAX_PART_NUMBER}, inclusive",
                extra={"ArgumentName": "partNumber", "ArgumentValue": str(part_number)},
            )

    @s3_operation
    async def upload_part(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        body: IBodySource,
    ) -> WriteResult:
        ref = parse_bucket(bucket)
        self._check_part_number(part_number)
        await self.upload(ref, key, upload_id)
        old = await self._old_part_markers(upload_id, part_number)
        path = layout.part_path(upload_id, part_number)
        md5: list[str] = []

        def requests() -> Iterator[pfs.ModifyFileRequest]:
            # grpc's request-consumer thread.
            yield pfs_client.set_commit(mp_head())
            for marker in old:
                yield pfs_client.delete_file(marker)
            yield from pfs_client.put_file(path, body.chunks())
            md5.append(body.md5_hex())
            yield pfs_client.add_empty(f"{path}.{md5[0]}")
            for algorithm, value in sorted(body.checksums().items()):
                yield pfs_client.add_empty(layout.checksum_marker(path, md5[0], algorithm, value))

        await self._core.client.modify_file(requests())
        return WriteResult(
            etag=md5[0], last_modified=datetime.now(timezone.utc), checksums=dict(body.checksums())
        )

    @s3_operation
    async def upload_part_copy(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        source: CopySource,
    ) -> WriteResult:
        ref = parse_bucket(bucket)
        self._check_part_number(part_number)
        client = self._core.client
        await self.upload(ref, key, upload_id)
        src_file, src_info, src_record = await self._core.copy_source(source)
        old = await self._old_part_markers(upload_id, part_number)
        path = layout.part_path(upload_id, part_number)
        head: list[pfs.ModifyFileRequest] = [pfs_client.set_commit(mp_head())]
        head += [pfs_client.delete_file(m) for m in old]
        if source.byte_range is None and not src_record.derived and _MD5.match(src_info.etag):
            # The whole object, whose MD5 we know: no data through the gateway.
            md5 = src_info.etag
            await client.modify_file(
                head + [pfs_client.copy_file(path, src_file), pfs_client.add_empty(f"{path}.{md5}")]
            )
            return WriteResult(etag=md5, last_modified=datetime.now(timezone.utc))
        start, end = source.byte_range or (0, src_info.size - 1)
        if source.byte_range is not None and not (0 <= start <= end < src_info.size):
            raise errors.InvalidRange(
                f"The x-amz-copy-source-range bytes={start}-{end} is not within the source "
                f"object of {src_info.size} bytes.",
                extra={"ActualObjectSize": str(src_info.size)},
            )
        length = max(0, end - start + 1)
        digest = hashlib.md5()

        def copied() -> Iterator[bytes]:
            # grpc's request-consumer thread.
            if length == 0:
                return
            reader = client.open_file(src_file, start)
            remaining = length
            try:
                for chunk in reader:
                    chunk = chunk[:remaining]
                    digest.update(chunk)
                    remaining -= len(chunk)
                    yield chunk
                    if remaining == 0:
                        break
            finally:
                reader.cancel()
            if remaining:
                raise errors.InternalError("The copy source ended early.")

        def requests() -> Iterator[pfs.ModifyFileRequest]:
            yield from head
            yield from pfs_client.put_file(path, copied())
            yield pfs_client.add_empty(f"{path}.{digest.hexdigest()}")

        await client.modify_file(requests())
        return WriteResult(etag=digest.hexdigest(), last_modified=datetime.now(timezone.utc))

    # complete / abort ------------------------------------------------------------

    @s3_operation
    async def complete_multipart_upload(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        parts: Sequence[CompletedPart],
        conditions: WriteConditions | None = None,
    ) -> WriteResult:
        ref = parse_bucket(bucket)
        check_key(key)
        core, client = self._core, self._core.client
        await core.writable(ref)
        listed = [(p.part_number, normalize_etag(p.etag)) for p in parts]
        try:
            upload = await self.upload(ref, key, upload_id)
        except errors.NoSuchUpload:
            # A retry of a Complete whose reply was lost: the same answer.
            done = await self._completion(upload_id)
            if done is not None and done.matches(ref, key, listed):
                return done.result()
            raise
        if not parts:
            raise errors.MalformedXML(
                "The XML you provided was not well-formed or did not validate against our "
                "published schema: at least one part must be specified."
            )
        mp_head = (await client.inspect_branch(
            refs.branch(MULTIPART_REPO, MULTIPART_BRANCH)
        )).head.id
        fixed = refs.commit(MULTIPART_REPO, mp_head, branch_name=MULTIPART_BRANCH)
        files = await self.list_upload(upload_id, fixed)
        stored = layout.parse_parts(files)
        previous = 0
        chosen: list[Part] = []
        for wanted in parts:
            if wanted.part_number <= previous:
                raise errors.InvalidPartOrder(extra={"UploadId": upload_id})
            previous = wanted.part_number
            found = stored.get(wanted.part_number)
            if found is None or normalize_etag(wanted.etag) not in found.md5s:
                raise errors.InvalidPart(
                    extra={
                        "UploadId": upload_id,
                        "PartNumber": str(wanted.part_number),
                        "ETag": wanted.etag,
                    }
                )
            chosen.append(found)
        for part in chosen[:-1]:
            if part.size < core.multipart.min_part_size:
                raise errors.EntityTooSmall(
                    extra={
                        "UploadId": upload_id,
                        "PartNumber": str(part.number),
                        "ProposedSize": str(part.size),
                        "MinSizeAllowed": str(core.multipart.min_part_size),
                    }
                )
        md5s = [normalize_etag(p.etag) for p in parts]
        etag = hashlib.md5(b"".join(bytes.fromhex(m) for m in md5s)).hexdigest()
        etag = f"{etag}-{len(parts)}"
        part_checksums = [part.checksums_of(md5) for part, md5 in zip(chosen, md5s)]
        checksums = self._composite(upload, parts, part_checksums)
        path = await core.keys.write_path(client, ref.head(), key)
        await core.precheck(ref, key, path, conditions)
        copies = [
            pfs_client.copy_file(path, refs.file(fixed, layout.part_path(upload_id, p.number)), append=True)
            for p in chosen
        ]
        record = Record(
            etag=etag,
            metadata=upload.metadata,
            checksums=checksums,
            part_sizes=tuple(p.size for p in chosen),
            part_checksums=tuple(part_checksums) if checksums else (),
        )

        async def step(scope: Scope) -> Callable[[str], WriteResult]:
            await core.check_conditions(ref, scope.commit, key, path, conditions)
            await scope.modify(
                client,
                [pfs_client.set_commit(scope.commit), pfs_client.delete_file(path), *copies],
            )
            return await core.recorded(scope, key, path, record)

        result = await core.submit(ref, [path], step)
        completion = CompletionRecord(
            project=ref.project,
            repo=ref.repo,
            branch=ref.branch,
            key=key,
            parts=tuple(listed),
            etag=result.etag,
            version_id=result.version_id,
            last_modified=result.last_modified.isoformat() if result.last_modified else None,
            checksums=dict(result.checksums),
        )
        try:
            await self._discard(ref, key, upload_id, files, completion)
        except pfs_errors.PfsError as e:
            log.warn("could not clean up completed upload {upload_id}: {error}", upload_id=upload_id, error=e)
        return result

    @staticmethod
    def _composite(
        upload: UploadRecord,
        parts: Sequence[CompletedPart],
        part_checksums: Sequence[dict[str, str]],
    ) -> dict[str, str]:
        """The object's composite checksum, if the upload was created with an algorithm.

        Every part must then have been uploaded with that checksum, and a
        checksum the Complete request lists for a part must be the stored one.
        """
        algorithm = upload.checksum_algorithm
        for wanted, stored in zip(parts, part_checksums):
            for alg, value in wanted.checksums.items():
                if stored.get(alg.upper()) not in (None, value):
                    raise errors.InvalidPart(
                        f"The {alg} checksum of part {wanted.part_number} does not match the "
                        "checksum it was uploaded with.",
                        extra={"PartNumber": str(wanted.part_number), "ETag": wanted.etag},
                    )
        if algorithm is None:
            return {}
        values: list[str] = []
        for wanted, stored in zip(parts, part_checksums):
            found = stored.get(algorithm)
            if found is None:
                raise errors.InvalidRequest(
                    f"The upload was created using a {algorithm.lower()} checksum. Part "
                    f"{wanted.part_number} was uploaded without one, so the object's checksum "
                    "cannot be computed; upload the part again with its checksum."
                )
            values.append(found)
        return {algorithm: composite_checksum(algorithm, values)}

    @s3_operation
    async def abort_multipart_upload(
        self, bucket: str, key: str, upload_id: str
    ) -> None:
        ref = parse_bucket(bucket)
        await self.upload(ref, key, upload_id)
        files = await self.list_upload(upload_id)
        await self._discard(ref, key, upload_id, files)


__all__ = [
    "MIN_PART_SIZE",
    "MULTIPART_BRANCH",
    "MULTIPART_REPO",
    "MultipartOps",
    "MultipartState",
    "UploadRecord",
]
