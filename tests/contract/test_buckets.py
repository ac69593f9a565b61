"""Buckets: create, exists, delete (empty or not), list; errors typed as S3 errors."""

from __future__ import annotations

import pytest_twisted
from zope.interface.verify import verifyObject

from pachs3gw.s3 import errors
from pachs3gw.s3.interfaces import IBackend

from .helpers import fails, put

deferred = pytest_twisted.ensureDeferred


def test_backend_provides_the_whole_interface(backend: IBackend) -> None:
    assert verifyObject(IBackend, backend)


@deferred
async def test_created_bucket_exists_is_listed_and_versioned(
    backend: IBackend, bucket_name: str
) -> None:
    await fails(backend.head_bucket(bucket_name), errors.NoSuchBucket)
    await backend.create_bucket(bucket_name)
    await backend.head_bucket(bucket_name)
    entries = {b.name: b for b in await backend.list_buckets()}
    assert bucket_name in entries
    assert entries[bucket_name].created.tzinfo is not None
    assert await backend.get_bucket_location(bucket_name) == ""
    assert await backend.get_bucket_versioning(bucket_name) == "Enabled"


@deferred
async def test_list_buckets_is_sorted_by_name(backend: IBackend, bucket_name: str) -> None:
    await backend.create_bucket(bucket_name)
    await backend.create_bucket(bucket_name + "b")
    names = [b.name for b in await backend.list_buckets()]
    assert names == sorted(names)
    assert {bucket_name, bucket_name + "b"} <= set(names)


@deferred
async def test_creating_an_existing_bucket_is_already_owned_by_you(
    backend: IBackend, bucket: str
) -> None:
    await fails(backend.create_bucket(bucket), errors.BucketAlreadyOwnedByYou)


@deferred
async def test_malformed_bucket_name_is_invalid_bucket_name(backend: IBackend) -> None:
    # Names both refuse. (Upper case differs: S3, and so the fake, refuse it;
    # PFS repo and branch names allow it, and the gateway serves them.)
    for name in ("a", "master..x", "master.bad name", "master._internal", "master.x!"):
        await fails(backend.create_bucket(name), errors.InvalidBucketName)


@deferred
async def test_delete_empty_bucket_then_it_is_gone(backend: IBackend, bucket: str) -> None:
    await backend.delete_bucket(bucket)
    await fails(backend.head_bucket(bucket), errors.NoSuchBucket)
    assert bucket not in {b.name for b in await backend.list_buckets()}
    await backend.create_bucket(bucket)  # the name is free again
    await backend.head_bucket(bucket)


@deferred
async def test_bucket_with_objects_is_not_empty_until_they_are_deleted(
    backend: IBackend, bucket: str
) -> None:
    await put(backend, bucket, "dir/k", b"x")
    await fails(backend.delete_bucket(bucket), errors.BucketNotEmpty)
    await backend.head_bucket(bucket)
    await backend.delete_object(bucket, "dir/k", None)
    await backend.delete_bucket(bucket)
    await fails(backend.head_bucket(bucket), errors.NoSuchBucket)


@deferred
async def test_every_call_on_a_missing_bucket_is_no_such_bucket(
    backend: IBackend, bucket_name: str
) -> None:
    from pachs3gw.s3.interfaces import CopySource, ObjectMetadata

    from tests.gateway.conftest import Body

    b = bucket_name
    calls = [
        lambda: backend.delete_bucket(b),
        lambda: backend.get_bucket_location(b),
        lambda: backend.get_bucket_versioning(b),
        lambda: backend.put_object(b, "k", Body(b"x"), ObjectMetadata()),
        lambda: backend.get_object(b, "k", None),
        lambda: backend.head_object(b, "k", None),
        lambda: backend.delete_object(b, "k", None),
        lambda: backend.delete_objects(b, [("k", None)]),
        lambda: backend.copy_object(CopySource(b, "k"), b, "k2", None),
        lambda: backend.list_objects(b, "", "", "", 10),
        lambda: backend.list_object_versions(b, "", "", "", "", 10),
        lambda: backend.create_multipart_upload(b, "k", ObjectMetadata()),
        lambda: backend.list_multipart_uploads(b, "", "", "", "", 10),
    ]
    for call in calls:
        await fails(call(), errors.NoSuchBucket)
