"""Versions: every write has a version ID that reads it back; ListObjectVersions pages.

Where the two backends part ways, S3's documented behaviour is the test and
the PFS backend's gap is an xfail naming why (its versions are PFS commits:
immutable history, and listing every past version would mean diffing commits).
"""

from __future__ import annotations

import pytest
import pytest_twisted

from pachs3gw.s3 import errors
from pachs3gw.s3.interfaces import IBackend

from .conftest import is_fake
from .helpers import fails, get_bytes, md5, put

deferred = pytest_twisted.ensureDeferred


def _gap(request: pytest.FixtureRequest, backend: IBackend, reason: str) -> None:
    if not is_fake(backend):
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))


@deferred
async def test_current_versions_are_listed_latest_and_read_back(
    backend: IBackend, bucket: str
) -> None:
    for key in ("a", "b/1", "b/2", "c"):
        await put(backend, bucket, key, key.encode())
    await put(backend, bucket, "a", b"a2")
    page = await backend.list_object_versions(bucket, "", "", "", "", 1000)
    latest = {v.key: v for v in page.versions if v.is_latest}
    assert sorted(latest) == ["a", "b/1", "b/2", "c"]
    assert not page.is_truncated
    for key, v in latest.items():
        assert not v.is_delete_marker
        assert v.etag == md5(b"a2" if key == "a" else key.encode())
        assert await get_bytes(backend, bucket, key, v.version_id) == (
            b"a2" if key == "a" else key.encode()
        )
    page = await backend.list_object_versions(bucket, "", "/", "", "", 1000)
    assert list(page.common_prefixes) == ["b/"]
    assert sorted({v.key for v in page.versions}) == ["a", "c"]


@deferred
async def test_version_pages_follow_their_markers(backend: IBackend, bucket: str) -> None:
    keys = ["k%d" % i for i in range(5)]
    for key in keys:
        await put(backend, bucket, key, b"x")
    seen: list[str] = []
    key_marker = vid_marker = ""
    for _ in range(10):
        page = await backend.list_object_versions(bucket, "", "", key_marker, vid_marker, 2)
        assert len(page.versions) <= 2
        seen += [v.key for v in page.versions]
        if not page.is_truncated:
            break
        assert page.next_key_marker == page.versions[-1].key
        key_marker, vid_marker = page.next_key_marker, page.next_version_id_marker or ""
    assert seen == keys


@deferred
async def test_every_version_of_an_overwritten_key_is_listed(
    backend: IBackend, bucket: str, request: pytest.FixtureRequest
) -> None:
    first = await put(backend, bucket, "k", b"one")
    second = await put(backend, bucket, "k", b"two")
    page = await backend.list_object_versions(bucket, "", "", "", "", 1000)
    assert [(v.version_id, v.is_latest) for v in page.versions] == [
        (second.version_id, True),
        (first.version_id, False),
    ]


@deferred
async def test_deleting_a_key_leaves_a_delete_marker(backend: IBackend, bucket: str) -> None:
    await put(backend, bucket, "k", b"x")
    result = await backend.delete_object(bucket, "k", None)
    assert result.version_id
    page = await backend.list_object_versions(bucket, "", "", "", "", 1000)
    marker = [v for v in page.versions if v.is_delete_marker]
    assert [(v.key, v.version_id, v.is_latest) for v in marker] == [("k", result.version_id, True)]


@deferred
async def test_deleting_a_specific_version_removes_it(
    backend: IBackend, bucket: str, request: pytest.FixtureRequest
) -> None:
    _gap(
        request,
        backend,
        "by design: versions are PFS commits, immutable; PfsBackend answers NotImplemented",
    )
    first = await put(backend, bucket, "k", b"one")
    await put(backend, bucket, "k", b"two")
    result = await backend.delete_object(bucket, "k", first.version_id)
    assert (result.version_id, result.error) == (first.version_id, None)
    await fails(backend.head_object(bucket, "k", first.version_id), errors.NoSuchVersion)
    assert await get_bytes(backend, bucket, "k") == b"two"
