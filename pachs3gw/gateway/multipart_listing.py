"""ListParts and ListMultipartUploads, one ListFile of the internal repo per page.

The index (see :mod:`pachs3gw.gateway._mplayout`) makes ListMultipartUploads
one ListFile: ``hex(UTF-8 key)`` sorts exactly like the key's bytes, and
``.`` sorts below every hex digit, so entries come in (key, upload ID) order
and a common prefix's entries can be passed with the marker
``hex(prefix) + "g"``. ListParts lists the upload's directory from the marker
part on.

Threads: reactor thread only.
"""

from __future__ import annotations

from pachs3gw.gateway import _mplayout as layout
from pachs3gw.gateway._core import BackendCore
from pachs3gw.gateway._errors import s3_operation
from pachs3gw.gateway._mplayout import mp_head
from pachs3gw.gateway._pfsutil import to_datetime
from pachs3gw.gateway.buckets import parse_bucket
from pachs3gw.gateway.multipart import MultipartOps
from pachs3gw.pfs import errors as pfs_errors
from pachs3gw.pfs import refs
from pachs3gw.proto import pfs_v2_pb2 as pfs
from pachs3gw.s3.interfaces import PartInfo, PartsPage, UploadInfo, UploadsPage

#: Above every hex digit, "." and "/": passes every entry starting with a hex key.
_PAST_HEX = "g"
_BATCH = 1000


class MultipartListingOps:
    """ListParts and ListMultipartUploads of one backend, over its core.

    Upload records are read through the backend's :class:`MultipartOps`.
    """

    def __init__(self, core: BackendCore, multipart: MultipartOps) -> None:
        self._core = core
        self._multipart = multipart

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
        await self._multipart.upload(ref, key, upload_id)
        # Past the marker part's bytes and its ETag files ("." < "g").
        after = (
            layout.part_path(upload_id, part_number_marker) + "." + _PAST_HEX
            if part_number_marker > 0
            else None
        )
        infos: list[pfs.FileInfo] = []
        done = False
        while not done:
            batch = await self._multipart.list_upload(upload_id, after=after, number=_BATCH)
            infos += batch
            done = len(batch) < _BATCH
            if batch:
                after = batch[-1].file.path
            # Enough once a part beyond the page has started (its predecessors are whole).
            if len({p for p in layout.part_numbers(infos)}) > max_parts + 1:
                break
        parts = sorted(layout.parse_parts(infos).values(), key=lambda p: p.number)
        page = parts[:max_parts] if max_parts > 0 else []
        truncated = len(parts) > len(page)
        return PartsPage(
            parts=[
                PartInfo(p.number, p.md5s[-1], p.size, p.committed, p.checksums_of(p.md5s[-1]))
                for p in page
            ],
            is_truncated=truncated,
            next_part_number_marker=page[-1].number if truncated and page else None,
        )

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
        await self._core.bucket_exists(ref)
        directory = layout.index_dir(ref)
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
                batch = await self._core.client.list_files(
                    refs.file(mp_head(), directory), after=marker, number=want
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
