"""Buckets and objects through PfsBackend against the real embedded PFS server."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.defer import ensureDeferred

from pachs3gw.gateway import PfsBackend
from pachs3gw.pfs import client as pfs_client
from pachs3gw.pfs import refs
from pachs3gw.pfs.client import PfsClient
from pachs3gw.s3 import errors
from pachs3gw.s3.interfaces import IBackend, ObjectMetadata
from zope.interface.verify import verifyObject

from .conftest import Body

inline = pytest_twisted.inlineCallbacks


def read_all(reader: Any, offset: int = 0, length: int | None = None) -> Any:
    from twisted.internet import reactor
    from twisted.internet.threads import deferToThread

    n = reader.info.size - offset if length is None else length
    return deferToThread(lambda: b"".join(reader.read(offset, n)))


async def failure_of(d: Any) -> BaseException:
    try:
        await d
    except BaseException as e:  # noqa: BLE001
        return e
    raise AssertionError("expected a failure")


def test_backend_provides_the_interface(backend: PfsBackend) -> None:
    assert verifyObject(IBackend, backend)


@inline
def test_create_bucket_then_list_and_head(backend: PfsBackend, bucket_name: str) -> Any:
    yield backend.create_bucket(bucket_name)
    yield backend.head_bucket(bucket_name)
    names = [b.name for b in (yield backend.list_buckets())]
    assert bucket_name in names
    assert not any(n.split(".")[1].startswith("_") for n in names)
    assert (yield backend.get_bucket_versioning(bucket_name)) == "Enabled"


@inline
def test_create_existing_bucket_is_already_owned_by_you(
    backend: PfsBackend, bucket_name: str
) -> Any:
    yield backend.create_bucket(bucket_name)
    e = yield ensureDeferred(failure_of(backend.create_bucket(bucket_name)))
    assert isinstance(e, errors.BucketAlreadyOwnedByYou)


@inline
def test_second_branch_of_a_repo_is_another_bucket(backend: PfsBackend, bucket_name: str) -> Any:
    repo = bucket_name.split(".")[1]
    yield backend.create_bucket(bucket_name)
    yield backend.create_bucket(f"dev.{repo}")
    names = [b.name for b in (yield backend.list_buckets())]
    assert {bucket_name, f"dev.{repo}"} <= set(names)
    yield backend.delete_bucket(f"dev.{repo}")
    yield backend.head_bucket(bucket_name)  # the repo stays for master


@inline
def test_missing_bucket_is_no_such_bucket(backend: PfsBackend, bucket_name: str) -> Any:
    for call in (
        lambda: backend.head_bucket(bucket_name),
        lambda: backend.head_object(bucket_name, "k", None),
        lambda: backend.list_objects(bucket_name, "", "", "", 10),
        lambda: backend.put_object(bucket_name, "k", Body(b"x"), ObjectMetadata()),
        lambda: backend.delete_bucket(bucket_name),
    ):
        e = yield ensureDeferred(failure_of(call()))
        assert isinstance(e, errors.NoSuchBucket), e


@inline
def test_put_then_get_returns_same_bytes_and_md5_etag(
    backend: PfsBackend, bucket_name: str
) -> Any:
    yield backend.create_bucket(bucket_name)
    data = bytes(range(256)) * 5000  # ~1.2 MiB, several chunks
    meta = ObjectMetadata(
        headers={"content-type": "text/csv", "cache-control": "no-cache"},
        user={"owner": "zoë"},
    )
    result = yield backend.put_object(bucket_name, "a/b.csv", Body(data), meta)
    assert result.etag == hashlib.md5(data).hexdigest()
    assert result.version_id and len(result.version_id) == 32
    reader = yield backend.get_object(bucket_name, "a/b.csv", None)
    assert reader.info.etag == result.etag
    assert reader.info.size == len(data)
    assert reader.info.version_id == result.version_id
    assert reader.info.metadata == meta
    assert (yield read_all(reader)) == data
    assert (yield read_all(reader, 1000, 70000)) == data[1000:71000]
    info = yield backend.head_object(bucket_name, "a/b.csv", None)
    assert info.etag == result.etag and info.metadata == meta


@inline
def test_overwrite_makes_a_new_version_and_old_version_still_reads(
    backend: PfsBackend, bucket_name: str
) -> Any:
    yield backend.create_bucket(bucket_name)
    first = yield backend.put_object(bucket_name, "k", Body(b"one"), ObjectMetadata())
    second = yield backend.put_object(bucket_name, "k", Body(b"two!"), ObjectMetadata())
    assert first.version_id != second.version_id
    now = yield backend.get_object(bucket_name, "k", None)
    assert (yield read_all(now)) == b"two!"
    old = yield backend.get_object(bucket_name, "k", first.version_id)
    assert (yield read_all(old)) == b"one"
    assert old.info.etag == hashlib.md5(b"one").hexdigest()
    e = yield ensureDeferred(failure_of(backend.head_object(bucket_name, "k", "f" * 32)))
    assert isinstance(e, errors.NoSuchVersion)
    e = yield ensureDeferred(failure_of(backend.head_object(bucket_name, "k", "nope")))
    assert isinstance(e, errors.NoSuchVersion)


@inline
def test_empty_object(backend: PfsBackend, bucket_name: str) -> Any:
    yield backend.create_bucket(bucket_name)
    result = yield backend.put_object(bucket_name, "empty", Body(b""), ObjectMetadata())
    assert result.etag == hashlib.md5(b"").hexdigest()
    info = yield backend.head_object(bucket_name, "empty", None)
    assert info.size == 0


@inline
def test_missing_key_and_directory_are_no_such_key(backend: PfsBackend, bucket_name: str) -> Any:
    yield backend.create_bucket(bucket_name)
    e = yield ensureDeferred(failure_of(backend.head_object(bucket_name, "nope", None)))
    assert isinstance(e, errors.NoSuchKey)  # empty branch
    yield backend.put_object(bucket_name, "dir/file", Body(b"x"), ObjectMetadata())
    for key in ("nope", "dir"):
        e = yield ensureDeferred(failure_of(backend.get_object(bucket_name, key, None)))
        assert isinstance(e, errors.NoSuchKey), (key, e)


@inline
def test_failed_body_leaves_no_commit_and_no_object(
    backend: PfsBackend, client: PfsClient, bucket_name: str
) -> Any:
    yield backend.create_bucket(bucket_name)
    yield backend.put_object(bucket_name, "keep", Body(b"x"), ObjectMetadata())
    ref_branch = refs.branch(bucket_name.split(".")[1], "master")
    before = (yield client.inspect_branch(ref_branch)).head.id
    bad = Body(b"y" * 300_000, fail_with=errors.BadDigest())
    e = yield ensureDeferred(
        failure_of(backend.put_object(bucket_name, "bad", bad, ObjectMetadata()))
    )
    assert isinstance(e, errors.BadDigest)
    assert (yield client.inspect_branch(ref_branch)).head.id == before
    e = yield ensureDeferred(failure_of(backend.head_object(bucket_name, "bad", None)))
    assert isinstance(e, errors.NoSuchKey)


@inline
def test_delete_object_and_missing_key_delete_makes_no_commit(
    backend: PfsBackend, client: PfsClient, bucket_name: str
) -> Any:
    yield backend.create_bucket(bucket_name)
    yield backend.put_object(bucket_name, "k", Body(b"x"), ObjectMetadata())
    yield backend.delete_object(bucket_name, "k", None)
    e = yield ensureDeferred(failure_of(backend.head_object(bucket_name, "k", None)))
    assert isinstance(e, errors.NoSuchKey)
    branch = refs.branch(bucket_name.split(".")[1], "master")
    head = (yield client.inspect_branch(branch)).head.id
    result = yield backend.delete_object(bucket_name, "k", None)
    assert result.error is None
    assert (yield client.inspect_branch(branch)).head.id == head
    # ``head`` is the delete marker: deleting it brings "k" back (one commit);
    # deleting it again, or any version, is refused (commits are immutable).
    restored = yield backend.delete_object(bucket_name, "k", head)
    assert restored.delete_marker and restored.version_id == head
    assert (yield backend.head_object(bucket_name, "k", None)).size == 1
    e = yield ensureDeferred(failure_of(backend.delete_object(bucket_name, "k", head)))
    assert isinstance(e, errors.NotImplemented_)


@inline
def test_delete_bucket_refuses_non_empty_then_deletes_branch_and_repo(
    backend: PfsBackend, client: PfsClient, bucket_name: str
) -> Any:
    yield backend.create_bucket(bucket_name)
    yield backend.put_object(bucket_name, "k", Body(b"x"), ObjectMetadata())
    e = yield ensureDeferred(failure_of(backend.delete_bucket(bucket_name)))
    assert isinstance(e, errors.BucketNotEmpty)
    yield backend.delete_object(bucket_name, "k", None)
    yield backend.delete_bucket(bucket_name)
    e = yield ensureDeferred(failure_of(backend.head_bucket(bucket_name)))
    assert isinstance(e, errors.NoSuchBucket)
    repos = [r.repo.name for r in (yield client.list_repos())]
    assert bucket_name.split(".")[1] not in repos


@inline
def test_commit_view_reads_that_commit_and_refuses_writes(
    backend: PfsBackend, bucket_name: str
) -> Any:
    yield backend.create_bucket(bucket_name)
    first = yield backend.put_object(bucket_name, "k", Body(b"old"), ObjectMetadata())
    yield backend.put_object(bucket_name, "k", Body(b"new"), ObjectMetadata())
    view = f"{first.version_id}.{bucket_name}"
    yield backend.head_bucket(view)
    reader = yield backend.get_object(view, "k", None)
    assert (yield read_all(reader)) == b"old"
    page = yield backend.list_objects(view, "", "", "", 10)
    assert [o.key for o in page.contents] == ["k"]
    e = yield ensureDeferred(failure_of(backend.put_object(view, "k", Body(b"x"), ObjectMetadata())))
    assert isinstance(e, errors.AccessDenied) and first.version_id in e.message


@inline
def test_output_branch_refuses_writes_naming_the_branch(
    backend: PfsBackend, client: PfsClient, bucket_name: str
) -> Any:
    repo = bucket_name.split(".")[1]
    yield backend.create_bucket(bucket_name)
    yield backend.put_object(bucket_name, "k", Body(b"x"), ObjectMetadata())
    out = "r" + repo[1:] + "out"
    yield client.create_repo(refs.repo(out))
    yield client.create_branch(refs.branch(out, "master"), provenance=[refs.branch(repo, "master")])
    e = yield ensureDeferred(
        failure_of(backend.put_object(f"master.{out}", "k", Body(b"x"), ObjectMetadata()))
    )
    assert isinstance(e, errors.AccessDenied)
    assert f"default/{out}@master" in e.message
    e = yield ensureDeferred(failure_of(backend.delete_object(f"master.{out}", "k", None)))
    assert isinstance(e, errors.AccessDenied)


@inline
def test_folder_keys_are_stored_and_listed(backend: PfsBackend, bucket_name: str) -> Any:
    yield backend.create_bucket(bucket_name)
    yield backend.put_object(bucket_name, "photos/", Body(b""), ObjectMetadata())
    yield backend.put_object(bucket_name, "photos/cat.jpg", Body(b"meow"), ObjectMetadata())
    info = yield backend.head_object(bucket_name, "photos/", None)
    assert info.size == 0 and info.key == "photos/"
    page = yield backend.list_objects(bucket_name, "", "", "", 10)
    assert [o.key for o in page.contents] == ["photos/", "photos/cat.jpg"]
    page = yield backend.list_objects(bucket_name, "photos/", "/", "", 10)
    assert [o.key for o in page.contents] == ["photos/", "photos/cat.jpg"]
    # A key named like the marker is stored too (encoded), apart from the folder key.
    yield backend.put_object(bucket_name, "photos/.s3folder", Body(b"m"), ObjectMetadata())
    page = yield backend.list_objects(bucket_name, "photos/", "", "", 10)
    assert [o.key for o in page.contents] == ["photos/", "photos/.s3folder", "photos/cat.jpg"]
    info = yield backend.head_object(bucket_name, "photos/", None)
    assert info.size == 0


@inline
def test_file_written_outside_the_gateway_gets_pfs_hash_etag_and_guessed_type(
    backend: PfsBackend, client: PfsClient, bucket_name: str
) -> Any:
    repo = bucket_name.split(".")[1]
    yield backend.create_bucket(bucket_name)
    yield backend.put_object(
        bucket_name, "t.json", Body(b"{}"), ObjectMetadata(headers={"content-type": "x/y"})
    )
    # pachctl put file, as it were:
    yield client.modify_file(
        [pfs_client.set_commit(refs.branch_head(repo, "master")),
         *pfs_client.put_file("/t.json", [b'{"a": 1}'])]
    )
    info = yield backend.head_object(bucket_name, "t.json", None)
    pfs_info = yield client.inspect_file(refs.file(refs.branch_head(repo, "master"), "/t.json"))
    assert info.etag == pfs_info.hash.hex()
    assert info.metadata.headers["content-type"] == "application/json"
    page = yield backend.list_objects(bucket_name, "", "", "", 10)
    assert page.contents[0].etag == pfs_info.hash.hex()


@inline
def test_failed_bodies_never_commit_partial_writes(
    backend: PfsBackend, client: PfsClient, bucket_name: str
) -> Any:
    """A Python grpc server can take a cancelled stream for a finished one; the
    gateway's poisoned end of stream keeps every failed PUT from committing."""
    yield backend.create_bucket(bucket_name)
    yield backend.put_object(bucket_name, "keep", Body(b"x"), ObjectMetadata())
    branch = refs.branch(bucket_name.split(".")[1], "master")
    before = (yield client.inspect_branch(branch)).head.id
    for _ in range(60):
        bad = Body(b"y" * 300_000, fail_with=errors.BadDigest())
        e = yield ensureDeferred(
            failure_of(backend.put_object(bucket_name, "bad", bad, ObjectMetadata()))
        )
        assert isinstance(e, errors.BadDigest), repr(e)
    assert (yield client.inspect_branch(branch)).head.id == before
