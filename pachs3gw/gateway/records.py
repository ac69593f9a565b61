"""A metadata record, and where records live in ``_s3gateway_meta_`` (see ``metadata``).

Pure values and functions: safe from any thread.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes

import attrs

from pachs3gw.s3.interfaces import DEFAULT_CONTENT_TYPE, ObjectMetadata


@attrs.frozen
class Record:
    """What S3 knows about one content of one key beyond its bytes."""

    etag: str
    metadata: ObjectMetadata = attrs.field(factory=ObjectMetadata)
    checksums: dict[str, str] = attrs.field(factory=dict)
    part_sizes: tuple[int, ...] = ()
    #: Each part's verified checksums (multipart uploads created with an algorithm).
    part_checksums: tuple[dict[str, str], ...] = ()
    #: True for :func:`fallback_record` (no record: the ETag is the PFS hash).
    derived: bool = attrs.field(default=False, eq=False)

    def to_json(self, pfs_hash: str, commit_id: str = "") -> bytes:
        return json.dumps(
            {
                "v": 2 if commit_id else 1,
                "pfs_hash": pfs_hash,
                **({"commit": commit_id} if commit_id else {}),
                "etag": self.etag,
                "headers": self.metadata.headers,
                "user": self.metadata.user,
                "checksums": self.checksums,
                "part_sizes": list(self.part_sizes),
                **({"part_checksums": list(self.part_checksums)} if self.part_checksums else {}),
            },
            ensure_ascii=False,
            sort_keys=True,
        ).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> Record:
        raw = json.loads(data.decode("utf-8"))
        return cls(
            etag=str(raw["etag"]),
            metadata=ObjectMetadata(
                headers=dict(raw.get("headers") or {}), user=dict(raw.get("user") or {})
            ),
            checksums=dict(raw.get("checksums") or {}),
            part_sizes=tuple(int(n) for n in raw.get("part_sizes") or ()),
            part_checksums=tuple(dict(c) for c in raw.get("part_checksums") or ()),
        )

    def digest(self) -> str:
        """Names the record's content: equal records of one rid share it."""
        return hashlib.sha256(self.to_json("")).hexdigest()[:16]


def fallback_record(key: str, pfs_hash: bytes) -> Record:
    """For a file no record describes: ETag = hex PFS hash, type guessed from the key."""
    guessed, encoding = mimetypes.guess_type(key, strict=False)
    headers = {"content-type": guessed or DEFAULT_CONTENT_TYPE}
    if encoding:
        headers["content-encoding"] = encoding
    return Record(etag=pfs_hash.hex(), metadata=ObjectMetadata(headers=headers), derived=True)


def record_id(project: str, repo: str, key: str, pfs_hash: bytes) -> str:
    digest = hashlib.sha256()
    for part in (project, repo, key):
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    digest.update(pfs_hash)
    return digest.hexdigest()


def versions_dir(rid: str) -> str:
    return f"/v/{rid}/"


def version_record_path(rid: str, commit_id: str, digest: str) -> str:
    return f"{versions_dir(rid)}{commit_id}.{digest}"


def record_path(rid: str) -> str:
    """Where older gateways kept the one record of a content (read as a fallback)."""
    return f"/records/{rid[:2]}/{rid}"


def index_dir(project: str, repo: str) -> str:
    return f"/index/{project}/{repo}/"


def index_path(project: str, repo: str, key: str, pfs_hash: bytes, etag: str) -> str:
    return f"{index_dir(project, repo)}{key.encode('utf-8').hex()}/{pfs_hash.hex()}.{etag}"
