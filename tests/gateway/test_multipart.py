"""Multipart uploads against the embedded PFS server."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest_twisted
from twisted.internet.defer import ensureDeferred

from pachs3gw.gateway import PfsBackend, PfsBackendFactory
from pachs3gw.gateway.multipart import MULTIPART_REPO
from pachs3gw.pfs import refs
from pachs3gw.pfs.client import PfsClient
from pachs3gw.s3 import errors
from pachs3gw.s3.interfaces import CompletedPart, CopySource, ObjectMetadata

from .conftest import MIB, Body
from .test_objects import failure_of, read_all
from .test_writes import head_of

inline = pytest_twisted.inlineCallbacks


def multipart_etag(parts: list[bytes]) -> str:
    digest = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    return f"{digest}-{len(parts)}"


async def upload_files(client: PfsClient, upload_id: str) -> list[str]:
    try:
        infos = await client.walk_files(
            refs.file(refs.branch_head(MULTIPART_REPO, "master"), f"/uploads/{upload_id}/")
        )
    except Exception:  # noqa: BLE001
        return []
    return [i.file.path for i in infos if i.file_type == 1]


@inline
def test_complete_with_5mib_parts_is_one_commit_with_multipart_etag(
    backend: PfsBackend, client: PfsClient, bucket_name: str
) -> Any:
    yield backend.create_bucket(bucket_name)
    meta = ObjectMetadata(headers={"content-type": "application/x-tar"}, user={"a": "b"})
    upload_id = yield backend.create_multipart_upload(bucket_name, "big/file.tar", meta)
    parts = [b"a" * (5 * MIB), b"b" * (5 * MIB), b"tail"]
    completed = []
    for n, data in enumerate(parts, 1):
        result = yield backend.upload_part(bucket_name, "big/file.tar", upload_id, n, Body(data, chunk=MIB))
        assert result.etag == hashlib.md5(data).hexdigest()
        completed.append(CompletedPart(n, f'"{result.etag}"'))
    before = yield head_of(client, bucket_name)
    result = yield backend.complete_multipart_upload(bucket_name, "big/file.tar", upload_id, completed)
    assert result.etag == multipart_etag(parts)
    repo = bucket_name.split(".")[1]
    commits = yield client.list_commits(refs.repo(repo), to=refs.branch_head(repo, "master"))
    ids = [c.commit.id for c in commits]
    assert ids.index(before) == ids.index(result.version_id) + 1
    info = yield backend.head_object(bucket_name, "big/file.tar", None)
    assert info.etag == result.etag and info.size == 10 * MIB + 4
    assert info.part_sizes == (5 * MIB, 5 * MIB, 4) and info.metadata == meta
    reader = yield backend.get_object(bucket_name, "big/file.tar", None)
    assert (yield read_all(reader, 5 * MIB - 2, 6)) == b"aabbbb"
    assert (yield read_all(reader, 10 * MIB - 1)) == b"btail"
    assert (yield ensureDeferred(upload_files(client, upload_id))) == []
    listing = yield backend.list_multipart_uploads(bucket_name, "", "", "", "", 100)
    assert listing.uploads == []


@inline
def test_part_validation_errors(factory: PfsBackendFactory, bucket_name: str) -> Any:
    backend = factory.backend_for(None)
    yield backend.create_bucket(bucket_name)
    upload_id = yield backend.create_multipart_upload(bucket_name, "k", ObjectMetadata())
    r1 = yield backend.upload_part(bucket_name, "k", upload_id, 1, Body(b"one"))
    r2 = yield backend.upload_part(bucket_name, "k", upload_id, 2, Body(b"two"))

    async def complete(parts: list[CompletedPart]) -> BaseException:
        return await failure_of(
            backend.complete_multipart_upload(bucket_name, "k", upload_id, parts)
        )

    e = yield ensureDeferred(complete([CompletedPart(1, r1.etag), CompletedPart(2, r2.etag)]))
    assert isinstance(e, errors.EntityTooSmall)
    e = yield ensureDeferred(complete([CompletedPart(2, r2.etag), CompletedPart(1, r1.etag)]))
    assert isinstance(e, errors.InvalidPartOrder)
    e = yield ensureDeferred(complete([CompletedPart(1, r2.etag)]))
    assert isinstance(e, errors.InvalidPart)
    e = yield ensureDeferred(complete([CompletedPart(3, r1.etag)]))
    assert isinstance(e, errors.InvalidPart)
    e = yield ensureDeferred(
        failure_of(backend.upload_part(bucket_name, "k", upload_id, 0, Body(b"x")))
    )
    assert isinstance(e, errors.InvalidArgument)
    for bad_id in ("f" * 32, "nope"):
        e = yield ensureDeferred(
            failure_of(backend.upload_part(bucket_name, "k", bad_id, 1, Body(b"x")))
        )
        assert isinstance(e, errors.NoSuchUpload)
    e = yield ensureDeferred(
        failure_of(backend.upload_part(bucket_name, "other-key", upload_id, 1, Body(b"x")))
    )
    assert isinstance(e, errors.NoSuchUpload)
    # Nothing was written to the bucket.
    page = yield backend.list_objects(bucket_name, "", "", "", 10)
    assert page.contents == []
    # Small parts complete when the minimum is lowered; re-uploading a part replaces it.
    factory.multipart.min_part_size = 1
    r1b = yield backend.upload_part(bucket_name, "k", upload_id, 1, Body(b"ONE!"))
    e = yield ensureDeferred(complete([CompletedPart(1, r1.etag), CompletedPart(2, r2.etag)]))
    assert isinstance(e, errors.InvalidPart)
    result = yield backend.complete_multipart_upload(
        bucket_name, "k", upload_id, [CompletedPart(1, r1b.etag), CompletedPart(2, r2.etag)]
    )
    assert result.etag == multipart_etag([b"ONE!", b"two"])
    reader = yield backend.get_object(bucket_name, "k", None)
    assert (yield read_all(reader)) == b"ONE!two"
    e = yield ensureDeferred(
        failure_of(backend.upload_part(bucket_name, "k", upload_id, 1, Body(b"x")))
    )
    assert isinstance(e, errors.NoSuchUpload)


@inline
def test_abort_removes_every_part(
    backend: PfsBackend, client: PfsClient, bucket_name: str
) -> Any:
    yield backend.create_bucket(bucket_name)
    upload_id = yield backend.create_multipart_upload(bucket_name, "a/b", ObjectMetadata())
    yield backend.upload_part(bucket_name, "a/b", upload_id, 1, Body(b"x" * 1000))
    assert (yield ensureDeferred(upload_files(client, upload_id)))
    yield backend.abort_multipart_upload(bucket_name, "a/b", upload_id)
    assert (yield ensureDeferred(upload_files(client, upload_id))) == []
    e = yield ensureDeferred(
        failure_of(backend.abort_multipart_upload(bucket_name, "a/b", upload_id))
    )
    assert isinstance(e, errors.NoSuchUpload)
    e = yield ensureDeferred(failure_of(backend.list_parts(bucket_name, "a/b", upload_id, 0, 10)))
    assert isinstance(e, errors.NoSuchUpload)


@inline
def test_list_parts_pages(factory: PfsBackendFactory, bucket_name: str) -> Any:
    backend = factory.backend_for(None)
    yield backend.create_bucket(bucket_name)
    upload_id = yield backend.create_multipart_upload(bucket_name, "k", ObjectMetadata())
    etags = {}
    for n in (1, 2, 3, 5, 8):
        r = yield backend.upload_part(bucket_name, "k", upload_id, n, Body(b"p%d" % n))
        etags[n] = r.etag
    seen = []
    marker = 0
    while True:
        page = yield backend.list_parts(bucket_name, "k", upload_id, marker, 2)
        seen += [(p.part_number, p.etag, p.size) for p in page.parts]
        if not page.is_truncated:
            break
        marker = page.next_part_number_marker
    assert seen == [(n, etags[n], 2) for n in (1, 2, 3, 5, 8)]


@inline
def test_list_multipart_uploads_with_slashes_prefixes_and_paging(
    backend: PfsBackend, bucket_name: str
) -> Any:
    yield backend.create_bucket(bucket_name)
    keys = ["a/b/c", "a/b/c", "a/d", "a/é", "b", "c/x"]
    ids = []
    for key in keys:
        ids.append((key, (yield backend.create_multipart_upload(bucket_name, key, ObjectMetadata()))))
    expected = sorted(ids, key=lambda kv: (kv[0].encode(), kv[1]))
    seen = []
    key_marker, id_marker = "", ""
    while True:
        page = yield backend.list_multipart_uploads(bucket_name, "", "", key_marker, id_marker, 2)
        seen += [(u.key, u.upload_id) for u in page.uploads]
        if not page.is_truncated:
            break
        key_marker, id_marker = page.next_key_marker, page.next_upload_id_marker or ""
    assert seen == expected
    page = yield backend.list_multipart_uploads(bucket_name, "a/", "/", "", "", 100)
    assert [u.key for u in page.uploads] == ["a/d", "a/é"]
    assert list(page.common_prefixes) == ["a/b/"]
    page = yield backend.list_multipart_uploads(bucket_name, "", "/", "", "", 100)
    assert [u.key for u in page.uploads] == ["b"] and list(page.common_prefixes) == ["a/", "c/"]


@inline
def test_upload_part_copy_whole_and_range(factory: PfsBackendFactory, bucket_name: str) -> Any:
    backend = factory.backend_for(None)
    factory.multipart.min_part_size = 1
    yield backend.create_bucket(bucket_name)
    src = bytes(range(256)) * 100
    yield backend.put_object(bucket_name, "src", Body(src), ObjectMetadata())
    upload_id = yield backend.create_multipart_upload(bucket_name, "dst", ObjectMetadata())
    whole = yield backend.upload_part_copy(bucket_name, "dst", upload_id, 1, CopySource(bucket_name, "src"))
    assert whole.etag == hashlib.md5(src).hexdigest()
    part = yield backend.upload_part_copy(
        bucket_name, "dst", upload_id, 2, CopySource(bucket_name, "src", byte_range=(10, 1009))
    )
    assert part.etag == hashlib.md5(src[10:1010]).hexdigest()
    e = yield ensureDeferred(
        failure_of(
            backend.upload_part_copy(
                bucket_name, "dst", upload_id, 3, CopySource(bucket_name, "src", byte_range=(0, 10**6))
            )
        )
    )
    assert isinstance(e, errors.InvalidRange)
    yield backend.complete_multipart_upload(
        bucket_name, "dst", upload_id, [CompletedPart(1, whole.etag), CompletedPart(2, part.etag)]
    )
    reader = yield backend.get_object(bucket_name, "dst", None)
    assert (yield read_all(reader)) == src + src[10:1010]
