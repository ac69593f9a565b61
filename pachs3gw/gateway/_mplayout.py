"""Where multipart uploads live in ``_s3gateway_multipart_``, and the records kept there.

Layout (branch ``master``)::

    /uploads/<upload_id>/upload.json            bucket, key, metadata, checksum algorithm
    /uploads/<upload_id>/<nnnnn>                part nnnnn's bytes (zero-padded)
    /uploads/<upload_id>/<nnnnn>.<md5hex>       empty: part nnnnn's ETag
    /uploads/<upload_id>/<nnnnn>.<md5hex>.<ALG>.<hex>   empty: its verified checksum
    /index/<project>/<repo>/<branch>/<hex(key)>.<upload_id>    empty
    /completed/<upload_id>.json                 what Complete answered (for retries)

A part's MD5 and checksums are known only once its body has streamed, so
they are written in the same ModifyFile stream *after* the bytes, as names
of empty files: one commit holds all three, and ListParts is one ListFile
of the upload's directory. Checksums are hex in the name (base64 has ``/``).

The completion record is written in the commit that deletes the upload's
files: an SDK that lost Complete's reply retries it, and gets the same
answer instead of NoSuchUpload. It is a few hundred bytes and is kept.

Pure functions and values: safe from any thread.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Sequence

import attrs

from pachs3gw.gateway._pfsutil import to_datetime
from pachs3gw.gateway.buckets import BucketRef
from pachs3gw.pfs import refs
from pachs3gw.proto import pfs_v2_pb2 as pfs
from pachs3gw.s3.interfaces import ObjectMetadata, WriteResult

MULTIPART_REPO = "_s3gateway_multipart_"
MULTIPART_BRANCH = "master"


@attrs.frozen
class UploadRecord:
    project: str
    repo: str
    branch: str
    key: str
    metadata: ObjectMetadata
    initiated: str
    #: ``CRC32``... from CreateMultipartUpload's ``x-amz-checksum-algorithm``.
    checksum_algorithm: str | None = None

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
                "checksum_algorithm": self.checksum_algorithm,
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
            checksum_algorithm=raw.get("checksum_algorithm") or None,
        )


@attrs.frozen
class CompletionRecord:
    """What a completed upload answered, so that a retried Complete answers the same."""

    project: str
    repo: str
    branch: str
    key: str
    #: ``(part number, ETag)`` as the Complete request listed them.
    parts: tuple[tuple[int, str], ...]
    etag: str
    version_id: str | None
    last_modified: str | None
    checksums: dict[str, str] = attrs.field(factory=dict)

    def matches(self, ref: BucketRef, key: str, parts: Sequence[tuple[int, str]]) -> bool:
        return (self.project, self.repo, self.branch, self.key) == (
            ref.project,
            ref.repo,
            ref.branch,
            key,
        ) and self.parts == tuple(parts)

    def result(self) -> WriteResult:
        return WriteResult(
            etag=self.etag,
            version_id=self.version_id,
            last_modified=datetime.fromisoformat(self.last_modified) if self.last_modified else None,
            checksums=dict(self.checksums),
        )

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "project": self.project,
                "repo": self.repo,
                "branch": self.branch,
                "key": self.key,
                "parts": [list(p) for p in self.parts],
                "etag": self.etag,
                "version_id": self.version_id,
                "last_modified": self.last_modified,
                "checksums": self.checksums,
            },
            ensure_ascii=False,
            sort_keys=True,
        ).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> CompletionRecord:
        raw = json.loads(data.decode("utf-8"))
        return cls(
            project=raw["project"],
            repo=raw["repo"],
            branch=raw["branch"],
            key=raw["key"],
            parts=tuple((int(n), str(e)) for n, e in raw["parts"]),
            etag=raw["etag"],
            version_id=raw.get("version_id"),
            last_modified=raw.get("last_modified"),
            checksums=dict(raw.get("checksums") or {}),
        )


@attrs.frozen
class Part:
    number: int
    size: int
    md5s: tuple[str, ...]
    committed: datetime
    #: md5 → {algorithm: base64 checksum} verified when that content was uploaded.
    checksums: dict[str, dict[str, str]] = attrs.field(factory=dict)

    def checksums_of(self, md5: str) -> dict[str, str]:
        return dict(self.checksums.get(md5, {}))


def upload_dir(upload_id: str) -> str:
    return f"/uploads/{upload_id}/"


def part_path(upload_id: str, number: int) -> str:
    return f"/uploads/{upload_id}/{number:05d}"


def checksum_marker(path: str, md5: str, algorithm: str, value: str) -> str:
    """The empty file recording a part's verified checksum (hex: base64 has ``/``)."""
    return f"{path}.{md5}.{algorithm}.{base64.b64decode(value).hex()}"


def completion_path(upload_id: str) -> str:
    return f"/completed/{upload_id}.json"


def index_dir(ref: BucketRef) -> str:
    return f"/index/{ref.project}/{ref.repo}/{ref.branch}/"


def index_path(ref: BucketRef, key: str, upload_id: str) -> str:
    return index_dir(ref) + key.encode("utf-8").hex() + "." + upload_id


def mp_head() -> pfs.Commit:
    return refs.branch_head(MULTIPART_REPO, MULTIPART_BRANCH)


def parse_parts(infos: Sequence[pfs.FileInfo]) -> dict[int, Part]:
    """Parts (with their sizes, ETags and checksums) from a listing of an upload directory."""
    sizes: dict[int, tuple[int, datetime]] = {}
    md5s: dict[int, list[str]] = {}
    checksums: dict[int, dict[str, dict[str, str]]] = {}
    for info in infos:
        name = info.file.path.rsplit("/", 1)[-1]
        fields = name.split(".")
        if not fields[0].isdigit():
            continue
        number = int(fields[0])
        if len(fields) == 1:
            sizes[number] = (info.size_bytes, to_datetime(info.committed))
        elif len(fields) == 2:
            md5s.setdefault(number, []).append(fields[1])
        elif len(fields) == 4:
            try:
                value = base64.b64encode(bytes.fromhex(fields[3])).decode("ascii")
            except ValueError:
                continue
            checksums.setdefault(number, {}).setdefault(fields[1], {})[fields[2]] = value
    return {
        n: Part(n, size, tuple(md5s[n]), committed, checksums.get(n, {}))
        for n, (size, committed) in sizes.items()
        if n in md5s
    }


def part_numbers(infos: Sequence[pfs.FileInfo]) -> set[int]:
    numbers = set()
    for info in infos:
        number = info.file.path.rsplit("/", 1)[-1].partition(".")[0]
        if number.isdigit():
            numbers.add(int(number))
    return numbers
