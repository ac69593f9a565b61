"""Multipart uploads: parts in the internal repo ``_s3gateway_multipart_``.

Layout (branch ``master``)::

    /uploads/<upload_id>/upload.json          bucket, key, metadata, initiated
    /uploads/<upload_id>/<nnnnn>              part nnnnn's bytes (zero-padded)
    /uploads/<upload_id>/<nnnnn>.<md5hex>     empty: part nnnnn's ETag
    /index/<project>/<repo>/<branch>/<hex(key)>.<upload_id>    empty

- A part's MD5 is known only once its body has streamed, so it is written
  in the same ModifyFile stream *after* the bytes, as the name of an empty
  file (the request iterator is lazy): one commit holds both, and ListParts is
  one ListFile of the upload's directory.
- The index makes ListMultipartUploads one ListFile too: ``hex(UTF-8 key)``
  sorts exactly like the key's bytes, and ``.`` sorts below every hex digit,
  so entries come in (key, upload ID) order and a common prefix's entries
  can be passed with the marker ``hex(prefix) + "g"``.
- Complete = one ModifyFile on the destination branch: DeleteFile(key) and
  CopyFile(key, part, append=True) per part, all from one fixed commit of the
  internal repo: one atomic commit, and no data through the gateway. Then the
  upload's files are deleted from the internal repo (one commit).
- UploadPartCopy of a whole object whose MD5 is recorded is a CopyFile too.
  With ``x-amz-copy-source-range`` (or when the source's MD5 is unknown, e.g.
  a file written by pachctl) the bytes stream through the gateway -- PFS
  CopyFile copies whole files only, and the part's ETag must be its MD5.

Threads: all methods run on the reactor thread; the request iterators run on
grpc's request-consumer thread.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import datetime, timezone
from typing import Iterator, Sequence

import attrs
from twisted.logger import Logger

from pachs3gw.gateway._core import MIN_PART_SIZE, BackendCore, MultipartState
from pachs3gw.gateway._errors import s3_operation
from pachs3gw.gateway._pfsutil import (
    ensure_repo,
    modify_all_or_nothing,
    read_bytes,
    to_datetime,
)
from pachs3gw.gateway.buckets import BucketRef, parse_bucket
from pachs3gw.gateway.keys import key_to_path
from pachs3gw.gateway.metadata import Record
from pachs3gw.pfs import client as pfs_client
from pachs3gw.pfs import errors as pfs_errors
from pachs3gw.pfs import refs
from pachs3gw.proto import pfs_v2_pb2 as pfs
from pachs3gw.s3 import errors
from pachs3gw.s3.interfaces import (
    CompletedPart,
    CopySource,
    IBodySource,
    ObjectMetadata,
    PartInfo,
    PartsPage,
    UploadInfo,
    UploadsPage,
    WriteResult,
)

log = Logger()

MULTIPART_REPO = "_s3gateway_multipart_"
MULTIPART_BRANCH = "master"
MAX_PART_NUMBER = 10000
_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
_MD5 = re.compile(r"^[0-9a-f]{32}$")
#: Above every hex digit, "." and "/": passes every entry starting with a hex key.
_PAST_HEX = "g"
_BATCH = 1000


@attrs.frozen
class UploadRecord:
    project: str
    repo: str
    branch: str
    key: str
    metadata: ObjectMetadata
    initiated: str

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "project": self.project,
                "repo": self.repo,
                "branch": self.branch,
                "key": self.key,
                "headers": self.metadata.headers,
                "user": self.metadata.user,
                "initiated": self.initiated,
            },
            ensure_ascii=False,
            sort_keys=True,
        ).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> UploadRecord:
        raw = json.loads(data.decode("utf-8"))
        return cls(
            project=raw["project"],
            repo=raw["repo"],
            branch=raw["branch"],
            key=raw["key"],
            metadata=ObjectMetadata(headers=dict(raw["headers"]), user=dict(raw["user"])),
            initiated=raw["initiated"],
        )


@attrs.frozen
class _Part:
    number: int
    size: int
    md5s: tuple[str, ...]
    committed: datetime


def _upload_dir(upload_id: str) -> str:
    return f"/uploads/{upload_id}/"


def _part_path(upload_id: str, number: int) -> str:
    return f"/uploads/{upload_id}/{number:05d}"


def _index_dir(ref: BucketRef) -> str:
    return f"/index/{ref.project}/{ref.repo}/{ref.branch}/"


def _index_path(ref: BucketRef, key: str, upload_id: str) -> str:
    return _index_dir(ref) + key.encode("utf-8").hex() + "." + upload_id


def _mp_head() -> pfs.Commit:
    return refs.branch_head(MULTIPART_REPO, MULTIPART_BRANCH)


def _parse_parts(infos: Sequence[pfs.FileInfo]) -> dict[int, _Part]:
    """Parts (with their sizes and ETags) from a listing of an upload directory."""
    sizes: dict[int, tuple[int, datetime]] = {}
    md5s: dict[int, list[str]] = {}
    for info in infos:
        name = info.file.path.rsplit("/", 1)[-1]
        number_text, _, md5 = name.partition(".")
        if not number_text.isdigit():
            continue
        number = int(number_text)
        if md5:
            md5s.setdefault(number, []).append(md5)
        else:
            sizes[number] = (info.size_bytes, to_datetime(info.committed))
    return {
        n: _Part(n, size, tuple(md5s[n]), committed)
        for n, (size, committed) in sizes.items()
        if n in md5s
    }


def _normalize_etag(etag: str) -> str:
    return etag.strip().strip('"').lower()


class MultipartMixin(BackendCore):
    """The IMultipartBackend half of :class:`~pachs3gw.gateway.backend.PfsBackend`."""

    # upload records -------------------------------------------------------

    async def _ensure_mp_repo(self) -> None:
        if not self._mp.repo_ready:
            await ensure_repo(self._client, MULTIPART_REPO, MULTIPART_BRANCH)
            self._mp.repo_ready = True

    async def _upload(self, ref: BucketRef, key: str, upload_id: str) -> UploadRecord:
        """The upload's record; NoSuchUpload unless it exists for this bucket and key."""
        no_such = errors.NoSuchUpload(extra={"UploadId": upload_id})
        if not _UPLOAD_ID.match(upload_id):
            raise no_such
        file = refs.file(_mp_head(), _upload_dir(upload_id) + "upload.json")
        try:
            record = UploadRecord.from_json(
                await read_bytes(self._client, self._reactor, self._pool, file)
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

    async def _list_upload(
        self, upload_id: str, at: pfs.Commit | None = None
    ) -> list[pfs.FileInfo]:
        try:
            return await self._client.list_files(
                refs.file(at or _mp_head(), _upload_dir(upload_id))
            )
        except pfs_errors.NotFound:
            raise errors.NoSuchUpload(extra={"UploadId": upload_id}) from None

    async def _discard(
        self, ref: BucketRef, key: str, upload_id: str, files: Sequence[pfs.FileInfo]
    ) -> None:
        """Delete an upload's files and index entry (one commit)."""
        requests = [pfs_client.set_commit(_mp_head())]
        requests += [pfs_client.delete_file(info.file.path) for info in files]
        requests.append(pfs_client.delete_file(_index_path(ref, key, upload_id)))
        await self._client.modify_file(requests)

    # create / parts -----------------------------------------------------------

    @s3_operation
    async def create_multipart_upload(
        self, bucket: str, key: str, metadata: ObjectMetadata
    ) -> str:
        ref = parse_bucket(bucket)
        key_to_path(key)
        await self._writable(ref)
        await self._ensure_mp_repo()
        upload_id = uuid.uuid4().hex
        record = UploadRecord(
            project=ref.project,
            repo=ref.repo,
            branch=ref.branch,
            key=key,
            metadata=metadata,
            initiated=datetime.now(timezone.utc).isoformat(),
        )
        await self._client.modify_file(
            [
                pfs_client.set_commit(_mp_head()),
                pfs_client.add_bytes(_upload_dir(upload_id) + "upload.json", record.to_json()),
                pfs_client.add_empty(_index_path(ref, key, upload_id)),
            ]
        )
        return upload_id

    async def _old_part_markers(self, upload_id: str, number: int) -> list[str]:
        """ETag files of an earlier upload of the same part number (to replace)."""
        path = _part_path(upload_id, number)
        infos = await self._list_upload_after(upload_id, path, 8)
        return [
            i.file.path for i in infos if i.file.path.startswith(path + ".")
        ]

    async def _list_upload_after(
        self, upload_id: str, path: str, number: int
    ) -> list[pfs.FileInfo]:
        try:
            return await self._client.list_files(
                refs.file(_mp_head(), _upload_dir(upload_id)), after=path, number=number
            )
        except pfs_errors.NotFound:
            raise errors.NoSuchUpload(extra={"UploadId": upload_id}) from None

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
        await self._upload(ref, key, upload_id)
        old = await self._old_part_markers(upload_id, part_number)
        path = _part_path(upload_id, part_number)
        md5: list[str] = []

        def requests() -> Iterator[pfs.ModifyFileRequest]:
            # grpc's request-consumer thread.
            yield pfs_client.set_commit(_mp_head())
            for marker in old:
                yield pfs_client.delete_file(marker)
            yield from pfs_client.put_file(path, body.chunks())
            md5.append(body.md5_hex())
            yield pfs_client.add_empty(f"{path}.{md5[0]}")

        await modify_all_or_nothing(self._client, requests())
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
        await self._upload(ref, key, upload_id)
        src_file, src_info, src_record = await self._copy_source(source)
        old = await self._old_part_markers(upload_id, part_number)
        path = _part_path(upload_id, part_number)
        head: list[pfs.ModifyFileRequest] = [pfs_client.set_commit(_mp_head())]
        head += [pfs_client.delete_file(m) for m in old]
        if source.byte_range is None and not src_record.derived and _MD5.match(src_info.etag):
            # The whole object, whose MD5 we know: no data through the gateway.
            md5 = src_info.etag
            await self._client.modify_file(
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
        client = self._client
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

        await modify_all_or_nothing(self._client, requests())
        return WriteResult(etag=digest.hexdigest(), last_modified=datetime.now(timezone.utc))

    # complete / abort ------------------------------------------------------------

    @s3_operation
    async def complete_multipart_upload(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        parts: Sequence[CompletedPart],
    ) -> WriteResult:
        ref = parse_bucket(bucket)
        path = key_to_path(key)
        await self._writable(ref)
        upload = await self._upload(ref, key, upload_id)
        if not parts:
            raise errors.MalformedXML(
                "The XML you provided was not well-formed or did not validate against our "
                "published schema: at least one part must be specified."
            )
        mp_head = (await self._client.inspect_branch(
            refs.branch(MULTIPART_REPO, MULTIPART_BRANCH)
        )).head.id
        fixed = refs.commit(MULTIPART_REPO, mp_head, branch_name=MULTIPART_BRANCH)
        files = await self._list_upload(upload_id, fixed)
        stored = _parse_parts(files)
        previous = 0
        chosen: list[_Part] = []
        for wanted in parts:
            if wanted.part_number <= previous:
                raise errors.InvalidPartOrder(extra={"UploadId": upload_id})
            previous = wanted.part_number
            found = stored.get(wanted.part_number)
            if found is None or _normalize_etag(wanted.etag) not in found.md5s:
                raise errors.InvalidPart(
                    extra={
                        "UploadId": upload_id,
                        "PartNumber": str(wanted.part_number),
                        "ETag": wanted.etag,
                    }
                )
            chosen.append(found)
        for part in chosen[:-1]:
            if part.size < self._mp.min_part_size:
                raise errors.EntityTooSmall(
                    extra={
                        "UploadId": upload_id,
                        "PartNumber": str(part.number),
                        "ProposedSize": str(part.size),
                        "MinSizeAllowed": str(self._mp.min_part_size),
                    }
                )
        md5s = [_normalize_etag(p.etag) for p in parts]
        etag = hashlib.md5(b"".join(bytes.fromhex(m) for m in md5s)).hexdigest()
        etag = f"{etag}-{len(parts)}"
        requests = [pfs_client.set_commit(ref.head()), pfs_client.delete_file(path)]
        requests += [
            pfs_client.copy_file(path, refs.file(fixed, _part_path(upload_id, p.number)), append=True)
            for p in chosen
        ]
        await self._client.modify_file(requests)
        record = Record(
            etag=etag, metadata=upload.metadata, part_sizes=tuple(p.size for p in chosen)
        )
        result = await self._record_write(ref, key, path, record)
        try:
            await self._discard(ref, key, upload_id, files)
        except pfs_errors.PfsError as e:
            log.warn("could not clean up completed upload {upload_id}: {error}", upload_id=upload_id, error=e)
        return result

    @s3_operation
    async def abort_multipart_upload(
        self, bucket: str, key: str, upload_id: str
    ) -> None:
        ref = parse_bucket(bucket)
        await self._upload(ref, key, upload_id)
        files = await self._list_upload(upload_id)
        await self._discard(ref, key, upload_id, files)

    # listings ----------------------------------------------------------------------

    @s3_operation
    async def list_parts(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        part_number_marker: int,
        max_parts: int,
    ) -> PartsPage:
        ref = parse_bucket(bucket)
        await self._upload(ref, key, upload_id)
        # Past the marker part's bytes and its ETag files ("." < "g").
        after = (
            _part_path(upload_id, part_number_marker) + "." + _PAST_HEX
            if part_number_marker > 0
            else None
        )
        infos: list[pfs.FileInfo] = []
        done = False
        while not done:
            batch = await self._list_upload_after_opt(upload_id, after, _BATCH)
            infos += batch
            done = len(batch) < _BATCH
            if batch:
                after = batch[-1].file.path
            # Enough once a part beyond the page has started (its predecessors are whole).
            if len({p for p in _part_numbers(infos)}) > max_parts + 1:
                break
        parts = sorted(_parse_parts(infos).values(), key=lambda p: p.number)
        page = parts[:max_parts] if max_parts > 0 else []
        truncated = len(parts) > len(page)
        return PartsPage(
            parts=[PartInfo(p.number, p.md5s[-1], p.size, p.committed) for p in page],
            is_truncated=truncated,
            next_part_number_marker=page[-1].number if truncated and page else None,
        )

    async def _list_upload_after_opt(
        self, upload_id: str, after: str | None, number: int
    ) -> list[pfs.FileInfo]:
        if after is None:
            try:
                return await self._client.list_files(
                    refs.file(_mp_head(), _upload_dir(upload_id)), number=number
                )
            except pfs_errors.NotFound:
                raise errors.NoSuchUpload(extra={"UploadId": upload_id}) from None
        return await self._list_upload_after(upload_id, after, number)

    @s3_operation
    async def list_multipart_uploads(
        self,
        bucket: str,
        prefix: str,
        delimiter: str,
        key_marker: str,
        upload_id_marker: str,
        max_uploads: int,
    ) -> UploadsPage:
        ref = parse_bucket(bucket)
        await self._bucket_exists(ref)
        directory = _index_dir(ref)
        hex_prefix = prefix.encode("utf-8").hex()
        marker: str | None = directory + hex_prefix if prefix else None
        if key_marker:
            hex_marker = key_marker.encode("utf-8").hex()
            km = (
                f"{directory}{hex_marker}.{upload_id_marker}"
                if upload_id_marker
                else directory + hex_marker + "/"
            )
            marker = km if marker is None else max(marker, km)
        uploads: list[UploadInfo] = []
        prefixes: list[str] = []
        last: tuple[str, str | None] | None = None
        while True:
            want = min(max_uploads - len(uploads) - len(prefixes) + 1, _BATCH)
            if max_uploads <= 0:
                break
            try:
                batch = await self._client.list_files(
                    refs.file(_mp_head(), directory), after=marker, number=want
                )
            except pfs_errors.NotFound:
                batch = []
            jumped = False
            for info in batch:
                marker = info.file.path
                name = info.file.path.rsplit("/", 1)[-1]
                hex_key, _, upload_id = name.rpartition(".")
                if not hex_key.startswith(hex_prefix):
                    if hex_key > hex_prefix:
                        return UploadsPage(uploads, prefixes, False)
                    continue
                key = bytes.fromhex(hex_key).decode("utf-8")
                group = None
                if delimiter:
                    cut = key.find(delimiter, len(prefix))
                    if cut >= 0:
                        group = key[: cut + len(delimiter)]
                if group is not None and group <= key_marker:
                    # Reported on an earlier page: pass the rest of the group.
                    marker = directory + group.encode("utf-8").hex() + _PAST_HEX
                    jumped = True
                    break
                if len(uploads) + len(prefixes) == max_uploads:
                    assert last is not None
                    return UploadsPage(uploads, prefixes, True, last[0], last[1])
                if group is not None:
                    prefixes.append(group)
                    last = (group, None)
                    marker = directory + group.encode("utf-8").hex() + _PAST_HEX
                    jumped = True
                    break
                uploads.append(UploadInfo(key, upload_id, to_datetime(info.committed)))
                last = (key, upload_id)
            if not jumped and len(batch) < want:
                break
        return UploadsPage(uploads, prefixes, False)


def _part_numbers(infos: Sequence[pfs.FileInfo]) -> Iterator[int]:
    for info in infos:
        name = info.file.path.rsplit("/", 1)[-1]
        number = name.partition(".")[0]
        if number.isdigit():
            yield int(number)


__all__ = [
    "MIN_PART_SIZE",
    "MULTIPART_REPO",
    "MultipartMixin",
    "MultipartState",
    "UploadRecord",
]
