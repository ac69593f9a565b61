"""DeleteObjects, CopyObject and metadata against the embedded PFS server."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest_twisted
from twisted.internet.defer import ensureDeferred

from pachs3gw.gateway import PfsBackend, PfsBackendFactory
from pachs3gw.gateway.metadata import META_REPO
from pachs3gw.pfs import refs
from pachs3gw.pfs.client import PfsClient
from pachs3gw.s3 import errors
from pachs3gw.s3.interfaces import CopySource, ObjectMetadata

from .conftest import Body
from .test_objects import failure_of, read_all

inline = pytest_twisted.inlineCallbacks


def head_of(client: PfsClient, bucket: str) -> Any:
    branch, repo = bucket.split(".")
    return client.inspect_branch(refs.branch(repo, branch)).addCallback(lambda i: i.head.id)


@inline
def test_delete_objects_is_one_commit_with_per_key_results(
    backend: PfsBackend, client: PfsClient, bucket_name: str
) -> Any:
    yield backend.create_bucket(bucket_name)
    for key in ("a", "b/c", "d", "x//y"):
        yield backend.put_object(bucket_name, key, Body(key.encode()), ObjectMetadata())
    before = yield head_of(client, bucket_name)
    results = yield backend.delete_objects(
        bucket_name, [("a", None), ("b/c", None), ("missing", None), ("d", "f" * 32), ("x//y", None)]
    )
    assert [r.key for r in results] == ["a", "b/c", "missing", "d", "x//y"]
    assert [type(r.error) for r in results] == [
        type(None), type(None), type(None), errors.NoSuchVersion, type(None)
    ]
    after = yield head_of(client, bucket_name)
    commits = yield client.list_commits(refs.repo(bucket_name.split(".")[1]), to=refs.branch_head(bucket_name.split(".")[1], "master"))
    ids = [c.commit.id for c in commits]
    assert ids.index(before) == ids.index(after) + 1  # exactly one new commit
    page = yield backend.list_objects(bucket_name, "", "", "", 10)
    assert [o.key for o in page.contents] == ["d"]


@inline
def test_delete_objects_of_only_missing_keys_makes_no_commit(
    backend: PfsBackend, client: PfsClient, bucket_name: str
) -> Any:
    yield backend.create_bucket(bucket_name)
    yield backend.put_object(bucket_name, "dir/x", Body(b"x"), ObjectMetadata())
    before = yield head_of(client, bucket_name)
    # "dir" is a PFS directory, not an object: it must not take dir/x with it.
    results = yield backend.delete_objects(bucket_name, [("nope", None), ("dir", None)])
    assert all(r.error is None for r in results)
    assert (yield head_of(client, bucket_name)) == before
    yield backend.head_object(bucket_name, "dir/x", None)


@inline
def test_copy_keeps_etag_and_metadata_with_copy_directive(
    backend: PfsBackend, bucket_name: str
) -> Any:
    yield backend.create_bucket(bucket_name)
    other = bucket_name.replace("master.", "master.c")
    yield backend.create_bucket(other)
    meta = ObjectMetadata(headers={"content-type": "text/plain"}, user={"k": "v"})
    put = yield backend.put_object(bucket_name, "src", Body(b"hello" * 1000), meta)
    result = yield backend.copy_object(CopySource(bucket_name, "src"), other, "dst/x", None)
    assert result.etag == put.etag
    info = yield backend.head_object(other, "dst/x", None)
    assert info.etag == put.etag and info.metadata == meta
    reader = yield backend.get_object(other, "dst/x", None)
    assert (yield read_all(reader)) == b"hello" * 1000


@inline
def test_copy_with_replace_directive_and_onto_itself(
    backend: PfsBackend, bucket_name: str
) -> Any:
    yield backend.create_bucket(bucket_name)
    put = yield backend.put_object(
        bucket_name, "k", Body(b"data"), ObjectMetadata(headers={"content-type": "a/b"})
    )
    e = yield ensureDeferred(
        failure_of(backend.copy_object(CopySource(bucket_name, "k"), bucket_name, "k", None))
    )
    assert isinstance(e, errors.InvalidRequest)
    new = ObjectMetadata(headers={"content-type": "c/d"}, user={"x": "1"})
    result = yield backend.copy_object(CopySource(bucket_name, "k"), bucket_name, "k", new)
    assert result.etag == put.etag
    info = yield backend.head_object(bucket_name, "k", None)
    assert info.metadata == new and info.etag == put.etag


@inline
def test_copy_of_old_version_and_missing_source(backend: PfsBackend, bucket_name: str) -> Any:
    yield backend.create_bucket(bucket_name)
    v1 = yield backend.put_object(bucket_name, "k", Body(b"v1"), ObjectMetadata())
    yield backend.put_object(bucket_name, "k", Body(b"v2"), ObjectMetadata())
    yield backend.copy_object(CopySource(bucket_name, "k", v1.version_id), bucket_name, "old", None)
    reader = yield backend.get_object(bucket_name, "old", None)
    assert (yield read_all(reader)) == b"v1"
    e = yield ensureDeferred(
        failure_of(backend.copy_object(CopySource(bucket_name, "nope"), bucket_name, "x", None))
    )
    assert isinstance(e, errors.NoSuchKey)
    e = yield ensureDeferred(
        failure_of(backend.copy_object(CopySource("master.nosuchrepo", "k"), bucket_name, "x", None))
    )
    assert isinstance(e, errors.NoSuchBucket)


@inline
def test_metadata_lives_in_the_internal_repo_not_the_users(
    backend: PfsBackend, client: PfsClient, bucket_name: str
) -> Any:
    yield backend.create_bucket(bucket_name)
    yield backend.put_object(
        bucket_name, "k", Body(b"x"), ObjectMetadata(user={"a": "b"})
    )
    repo = bucket_name.split(".")[1]
    files = yield client.walk_files(refs.file(refs.branch_head(repo, "master"), "/"))
    assert [f.file.path for f in files if f.file_type == 1] == ["/k"]
    yield client.inspect_repo(refs.repo(META_REPO))
    names = [b.name for b in (yield backend.list_buckets())]
    assert not any(META_REPO in n for n in names)


@inline
def test_metadata_survives_a_cold_cache_and_listing_batches_fetches(
    factory: PfsBackendFactory, client: PfsClient, pool: Any, bucket_name: str
) -> Any:
    from twisted.internet import reactor

    backend = factory.backend_for(None)
    yield backend.create_bucket(bucket_name)
    meta = ObjectMetadata(headers={"content-type": "image/png"}, user={"ü": "ß"})
    for i in range(20):
        yield backend.put_object(bucket_name, f"k{i:02d}", Body(b"%d" % i), meta)
    cold = PfsBackendFactory(client, reactor, pool)
    page = yield cold.backend_for(None).list_objects(bucket_name, "", "", "", 1000)
    assert [o.etag for o in page.contents] == [
        hashlib.md5(b"%d" % i).hexdigest() for i in range(20)
    ]
    # One walk of the index, not one read per key.
    assert cold.metadata.index_walks == 1 and cold.metadata.fetches == 0
    page = yield cold.backend_for(None).list_objects(bucket_name, "", "", "", 1000)
    assert cold.metadata.index_walks == 1  # all from the cache now
    info = yield cold.backend_for(None).head_object(bucket_name, "k03", None)
    assert info.metadata == meta and cold.metadata.fetches == 1


@inline
def test_list_object_versions_shows_current_objects_with_readable_version_ids(
    backend: PfsBackend, bucket_name: str
) -> Any:
    yield backend.create_bucket(bucket_name)
    for key in ("a", "b/c", "d"):
        yield backend.put_object(bucket_name, key, Body(key.encode()), ObjectMetadata())
    page = yield backend.list_object_versions(bucket_name, "", "", "", "", 2)
    assert [(v.key, v.is_latest) for v in page.versions] == [("a", True), ("b/c", True)]
    assert page.is_truncated and page.next_key_marker == "b/c"
    assert page.versions[0].etag == hashlib.md5(b"a").hexdigest()
    reader = yield backend.get_object(bucket_name, "a", page.versions[0].version_id)
    assert (yield read_all(reader)) == b"a"
    rest = yield backend.list_object_versions(
        bucket_name, "", "", page.next_key_marker, page.next_version_id_marker or "", 2
    )
    assert [v.key for v in rest.versions] == ["d"] and not rest.is_truncated
    grouped = yield backend.list_object_versions(bucket_name, "", "/", "", "", 10)
    assert [v.key for v in grouped.versions] == ["a", "d"]
    assert list(grouped.common_prefixes) == ["b/"]
