"""Conditional writes: If-None-Match / If-Match on PutObject, CopyObject, CompleteMultipartUpload.

A failed condition is PreconditionFailed (NoSuchKey for If-Match on a missing
key) and writes nothing: no new version, the object as it was, a multipart
upload still there to complete. The check is atomic with the write: of
writers racing with ``If-None-Match: *`` exactly one wins.
"""

from __future__ import annotations

import pytest_twisted
from twisted.internet.defer import DeferredList

from pachs3gw.s3 import errors
from pachs3gw.s3.interfaces import (
    CompletedPart,
    CopySource,
    IBackend,
    ObjectMetadata,
    WriteConditions,
)

from tests.gateway.conftest import Body

from .conftest import MIN_PART_SIZE
from .helpers import fails, get_bytes, md5

deferred = pytest_twisted.ensureDeferred
CREATE = WriteConditions(if_none_match="*")


def if_match(etag: str) -> WriteConditions:
    return WriteConditions(if_match=f'"{etag}"')


async def versions_of(backend: IBackend, bucket: str, key: str) -> list[str]:
    page = await backend.list_object_versions(bucket, key, "", "", "", 1000)
    return [v.version_id for v in page.versions if v.key == key]


async def put(
    backend: IBackend, bucket: str, key: str, data: bytes, conditions: WriteConditions | None
) -> object:
    return await backend.put_object(bucket, key, Body(data), ObjectMetadata(), conditions=conditions)


@deferred
async def test_put_if_none_match_creates_once_then_refuses(backend: IBackend, bucket: str) -> None:
    first = await put(backend, bucket, "k", b"one", CREATE)
    body = Body(b"two")
    e = await fails(
        backend.put_object(bucket, "k", body, ObjectMetadata(), conditions=CREATE),
        errors.PreconditionFailed,
    )
    assert e.status == 412
    assert await get_bytes(backend, bucket, "k") == b"one"
    assert await versions_of(backend, bucket, "k") == [first.version_id]  # type: ignore[attr-defined]
    # An ETag list that names the current object refuses too; one that does not, writes.
    await fails(put(backend, bucket, "k", b"two", WriteConditions(if_none_match=md5(b"one"))),
                errors.PreconditionFailed)
    await put(backend, bucket, "k", b"two", WriteConditions(if_none_match='"other", "etags"'))
    assert await get_bytes(backend, bucket, "k") == b"two"


@deferred
async def test_put_if_match_overwrites_only_the_named_version(backend: IBackend, bucket: str) -> None:
    await fails(put(backend, bucket, "k", b"x", if_match(md5(b"x"))), errors.NoSuchKey)
    await put(backend, bucket, "k", b"one", None)
    await fails(put(backend, bucket, "k", b"two", if_match(md5(b"other"))), errors.PreconditionFailed)
    assert await get_bytes(backend, bucket, "k") == b"one"
    written = await backend.put_object(
        bucket, "k", Body(b"two"), ObjectMetadata(), conditions=WriteConditions(if_match=md5(b"one"))
    )
    assert written.etag == md5(b"two")
    await put(backend, bucket, "k", b"three", WriteConditions(if_match="*"))
    assert await get_bytes(backend, bucket, "k") == b"three"


@deferred
async def test_copy_with_conditions_on_the_destination(backend: IBackend, bucket: str) -> None:
    await put(backend, bucket, "src", b"source", None)
    await put(backend, bucket, "dst", b"old", None)
    source = CopySource(bucket, "src")
    await fails(backend.copy_object(source, bucket, "dst", None, conditions=CREATE),
                errors.PreconditionFailed)
    await fails(backend.copy_object(source, bucket, "dst", None, conditions=if_match(md5(b"no"))),
                errors.PreconditionFailed)
    await fails(backend.copy_object(source, bucket, "new", None, conditions=if_match(md5(b"no"))),
                errors.NoSuchKey)
    assert await get_bytes(backend, bucket, "dst") == b"old"
    await backend.copy_object(source, bucket, "dst", None, conditions=if_match(md5(b"old")))
    await backend.copy_object(source, bucket, "new", None, conditions=CREATE)
    assert await get_bytes(backend, bucket, "dst") == b"source"
    assert await get_bytes(backend, bucket, "new") == b"source"


@deferred
async def test_complete_with_a_failed_condition_keeps_the_upload(backend: IBackend, bucket: str) -> None:
    await put(backend, bucket, "big", b"old", None)
    upload_id = await backend.create_multipart_upload(bucket, "big", ObjectMetadata())
    part = await backend.upload_part(bucket, "big", upload_id, 1, Body(b"p" * MIN_PART_SIZE))
    parts = [CompletedPart(1, part.etag)]
    await fails(backend.complete_multipart_upload(bucket, "big", upload_id, parts, conditions=CREATE),
                errors.PreconditionFailed)
    assert await get_bytes(backend, bucket, "big") == b"old"
    listed = await backend.list_parts(bucket, "big", upload_id, 0, 1000)
    assert [p.part_number for p in listed.parts] == [1]
    done = await backend.complete_multipart_upload(
        bucket, "big", upload_id, parts, conditions=if_match(md5(b"old"))
    )
    assert done.etag.endswith("-1")
    assert await get_bytes(backend, bucket, "big") == b"p" * MIN_PART_SIZE


@deferred
async def test_racing_if_none_match_writers_exactly_one_wins(backend: IBackend, bucket: str) -> None:
    racers = 8
    outcomes = await DeferredList(
        [
            backend.put_object(bucket, "race", Body(b"writer %d" % i), ObjectMetadata(), conditions=CREATE)
            for i in range(racers)
        ],
        consumeErrors=True,
    )
    won = [(i, result) for i, (ok, result) in enumerate(outcomes) if ok]
    lost = [result.value for ok, result in outcomes if not ok]
    assert len(won) == 1, [type(e).__name__ for e in lost]
    assert len(lost) == racers - 1
    assert all(isinstance(e, errors.PreconditionFailed) for e in lost)
    (winner, result), = won
    assert await get_bytes(backend, bucket, "race") == b"writer %d" % winner
    assert await versions_of(backend, bucket, "race") == [result.version_id]
