"""Objects: put/get/head/delete, metadata, ETag = MD5, ranges through the reader, copies."""

from __future__ import annotations

import pytest_twisted
from twisted.internet.threads import deferToThread

from pachs3gw.s3 import errors
from pachs3gw.s3.interfaces import CopySource, IBackend, IObjectReader, ObjectMetadata
from zope.interface.verify import verifyObject

from tests.gateway.conftest import Body

from .helpers import fails, get_bytes, md5, put, read

deferred = pytest_twisted.ensureDeferred
MIB = 1 << 20
META = ObjectMetadata(
    headers={"content-type": "text/plain", "cache-control": "no-cache"},
    user={"colour": "blue", "owner": "ünïcode"},
)


@deferred
async def test_put_then_get_and_head_agree_on_bytes_etag_version_and_metadata(
    backend: IBackend, bucket: str
) -> None:
    data = b"hello world\n" * 1000
    written = await put(backend, bucket, "dir/a.txt", data, META)
    assert written.etag == md5(data)
    assert written.version_id
    reader = await backend.get_object(bucket, "dir/a.txt", None)
    assert verifyObject(IObjectReader, reader)
    assert await read(reader) == data
    info = await backend.head_object(bucket, "dir/a.txt", None)
    assert info == reader.info
    assert (info.key, info.size, info.etag) == ("dir/a.txt", len(data), md5(data))
    assert info.version_id == written.version_id
    assert info.metadata == META
    assert info.last_modified.tzinfo is not None
    assert info.part_sizes == ()


@deferred
async def test_empty_object_and_unusual_keys_round_trip(backend: IBackend, bucket: str) -> None:
    keys = ["empty", "with space/and+plus", "ünï/cødé ☃.txt", "a=b&c/%41"]
    for key in keys:
        data = key.encode() if key != "empty" else b""
        assert (await put(backend, bucket, key, data)).etag == md5(data)
        info = await backend.head_object(bucket, key, None)
        assert (info.key, info.size) == (key, len(data))
        assert await get_bytes(backend, bucket, key) == data


@deferred
async def test_missing_key_and_version_are_typed_errors(backend: IBackend, bucket: str) -> None:
    await fails(backend.get_object(bucket, "nope", None), errors.NoSuchKey)
    await fails(backend.head_object(bucket, "nope", None), errors.NoSuchKey)
    await put(backend, bucket, "k", b"x")
    for version in ("0" * 32, "not-a-version"):
        await fails(backend.head_object(bucket, "k", version), errors.NoSuchVersion)
        await fails(backend.get_object(bucket, "k", version), errors.NoSuchVersion)


@deferred
async def test_overwrite_makes_a_new_version_and_the_old_one_stays_readable(
    backend: IBackend, bucket: str
) -> None:
    first = await put(backend, bucket, "k", b"one", META)
    second = await put(backend, bucket, "k", b"two!")
    assert second.version_id != first.version_id
    assert await get_bytes(backend, bucket, "k") == b"two!"
    old = await backend.head_object(bucket, "k", first.version_id)
    assert (old.size, old.etag, old.metadata) == (3, md5(b"one"), META)
    assert await get_bytes(backend, bucket, "k", first.version_id) == b"one"
    assert (await backend.head_object(bucket, "k", None)).metadata == ObjectMetadata()


@deferred
async def test_reader_serves_any_range_in_pieces_and_small_reads_at_once(
    backend: IBackend, bucket: str
) -> None:
    data = bytes(range(256)) * (3 * MIB // 256) + b"tail"
    await put(backend, bucket, "big", data)
    reader = await backend.get_object(bucket, "big", None)
    for offset, length in [(0, 1), (5, 100), (MIB - 3, 7), (2 * MIB, MIB + 4), (len(data) - 1, 1)]:
        pieces = await deferToThread(lambda: list(reader.read(offset, length)))
        assert all(len(p) <= MIB for p in pieces)
        assert b"".join(pieces) == data[offset : offset + length]
    assert await reader.read_small(10, 20) == data[10:30]
    assert await reader.read_small(len(data) - 4, 4) == b"tail"


@deferred
async def test_a_cancelled_reader_stops(backend: IBackend, bucket: str) -> None:
    data = b"z" * (4 * MIB)
    await put(backend, bucket, "big", data)
    reader = await backend.get_object(bucket, "big", None)

    def read_then_cancel() -> int:
        got = 0
        try:
            for piece in reader.read(0, len(data)):
                got += len(piece)
                reader.cancel()
        except Exception:  # noqa: BLE001 (a cancelled read may end or raise)
            pass
        return got

    assert await deferToThread(read_then_cancel) < len(data)


@deferred
async def test_a_body_that_fails_stores_nothing(backend: IBackend, bucket: str) -> None:
    await put(backend, bucket, "k", b"before")
    bad = Body(b"x" * (512 * 1024), fail_with=errors.BadDigest())
    try:
        await backend.put_object(bucket, "k", bad, ObjectMetadata())
    except Exception:  # noqa: BLE001 (the HTTP layer answers the body's own error)
        pass
    else:
        raise AssertionError("a failing body was stored")
    assert await get_bytes(backend, bucket, "k") == b"before"
    await fails(backend.put_object(bucket, "new", Body(b"x" * 1000, fail_with=errors.BadDigest()), ObjectMetadata()), Exception)
    await fails(backend.head_object(bucket, "new", None), errors.NoSuchKey)


@deferred
async def test_delete_removes_the_key_and_deleting_nothing_succeeds(
    backend: IBackend, bucket: str
) -> None:
    written = await put(backend, bucket, "k", b"x")
    result = await backend.delete_object(bucket, "k", None)
    assert (result.key, result.error) == ("k", None)
    await fails(backend.head_object(bucket, "k", None), errors.NoSuchKey)
    # The version written before stays readable by its ID.
    assert await get_bytes(backend, bucket, "k", written.version_id) == b"x"
    missing = await backend.delete_object(bucket, "never", None)
    assert (missing.key, missing.error) == ("never", None)


@deferred
async def test_delete_objects_answers_every_key_in_order(backend: IBackend, bucket: str) -> None:
    for key in ("a", "b", "dir/c", "keep"):
        await put(backend, bucket, key, key.encode())
    results = await backend.delete_objects(bucket, [("b", None), ("zz", None), ("a", None), ("dir/c", None)])
    assert [(r.key, r.error) for r in results] == [
        ("b", None),
        ("zz", None),
        ("a", None),
        ("dir/c", None),
    ]
    page = await backend.list_objects(bucket, "", "", "", 100)
    assert [o.key for o in page.contents] == ["keep"]


@deferred
async def test_copy_keeps_etag_and_metadata_unless_replaced(backend: IBackend, bucket: str) -> None:
    data = b"copy me" * 100
    await put(backend, bucket, "src", data, META)
    kept = await backend.copy_object(CopySource(bucket, "src"), bucket, "dst/kept", None)
    assert kept.etag == md5(data) and kept.version_id
    info = await backend.head_object(bucket, "dst/kept", None)
    assert (info.size, info.etag, info.metadata) == (len(data), md5(data), META)
    assert await get_bytes(backend, bucket, "dst/kept") == data
    new_meta = ObjectMetadata(headers={"content-type": "application/json"}, user={"x": "1"})
    await backend.copy_object(CopySource(bucket, "src"), bucket, "dst/replaced", new_meta)
    info = await backend.head_object(bucket, "dst/replaced", None)
    assert (info.etag, info.metadata) == (md5(data), new_meta)
    # The source is untouched.
    assert (await backend.head_object(bucket, "src", None)).metadata == META


@deferred
async def test_copy_of_an_old_version_and_across_buckets(
    backend: IBackend, bucket: str, bucket_name: str
) -> None:
    other = bucket_name + "x"
    await backend.create_bucket(other)
    old = await put(backend, bucket, "src", b"old")
    await put(backend, bucket, "src", b"new")
    await backend.copy_object(CopySource(bucket, "src", old.version_id), other, "k", None)
    assert await get_bytes(backend, other, "k") == b"old"
    assert (await backend.head_object(other, "k", None)).etag == md5(b"old")


@deferred
async def test_copy_from_a_missing_source_is_a_typed_error(
    backend: IBackend, bucket: str, bucket_name: str
) -> None:
    await fails(backend.copy_object(CopySource(bucket, "nope"), bucket, "k", None), errors.NoSuchKey)
    await put(backend, bucket, "src", b"x")
    await fails(
        backend.copy_object(CopySource(bucket, "src", "0" * 32), bucket, "k", None),
        errors.NoSuchVersion,
    )
    await fails(
        backend.copy_object(CopySource(bucket_name + "gone", "src"), bucket, "k", None),
        errors.NoSuchBucket,
    )
    await fails(
        backend.copy_object(CopySource(bucket, "src"), bucket_name + "gone", "k", None),
        errors.NoSuchBucket,
    )
    await fails(backend.head_object(bucket, "k", None), errors.NoSuchKey)
