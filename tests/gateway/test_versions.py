"""Version history through PfsBackend: built once per branch, then extended by new commits only."""

from __future__ import annotations

import pytest_twisted
from twisted.internet.defer import gatherResults

from pachs3gw.gateway import PfsBackend, PfsBackendFactory
from pachs3gw.s3.interfaces import ObjectMetadata

from .conftest import Body


@pytest_twisted.ensureDeferred
async def test_history_is_extended_by_new_commits_not_rebuilt(
    factory: PfsBackendFactory, backend: PfsBackend, bucket_name: str
) -> None:
    await backend.create_bucket(bucket_name)
    for i in range(5):
        await backend.put_object(bucket_name, f"k{i % 2}", Body(b"x" * i), ObjectMetadata())
    histories = factory.histories
    first = await backend.list_object_versions(bucket_name, "", "", "", "", 1000)
    assert [(v.key, v.is_latest) for v in first.versions] == [
        ("k0", True), ("k0", False), ("k0", False), ("k1", True), ("k1", False)
    ]
    # Five writes, and the empty commit the branch started with.
    assert (histories.builds, histories.diffed) == (1, 6)
    # Listing again at the same head diffs nothing; one more write diffs one commit.
    await backend.list_object_versions(bucket_name, "k", "", "", "", 2)
    assert histories.diffed == 6
    put = await backend.put_object(bucket_name, "k1", Body(b"new"), ObjectMetadata())
    await backend.delete_object(bucket_name, "k0", None)
    page = await backend.list_object_versions(bucket_name, "", "", "", "", 1000)
    assert (histories.builds, histories.diffed) == (1, 8)
    assert page.versions[0].is_delete_marker and page.versions[0].is_latest
    k1 = [v for v in page.versions if v.key == "k1"]
    assert k1[0].version_id == put.version_id and k1[0].etag == put.etag


@pytest_twisted.ensureDeferred
async def test_concurrent_listings_share_one_build(
    factory: PfsBackendFactory, backend: PfsBackend, bucket_name: str
) -> None:
    await backend.create_bucket(bucket_name)
    for i in range(3):
        await backend.put_object(bucket_name, f"k{i}", Body(b"x"), ObjectMetadata())
    pages = await gatherResults(
        [backend.list_object_versions(bucket_name, "", "", "", "", 1000) for _ in range(4)]
    )
    assert all(len(p.versions) == 3 for p in pages)
    assert (factory.histories.builds, factory.histories.diffed) == (1, 4)


@pytest_twisted.ensureDeferred
async def test_markers_and_delimiter_page_like_s3(backend: PfsBackend, bucket_name: str) -> None:
    await backend.create_bucket(bucket_name)
    for i, key in enumerate(("a", "d/1", "d/2", "e", "e", "f")):
        await backend.put_object(bucket_name, key, Body(b"%d" % i), ObjectMetadata())
    seen = []
    key_marker = vid_marker = ""
    while True:
        page = await backend.list_object_versions(bucket_name, "", "/", key_marker, vid_marker, 2)
        seen += [(v.key, v.version_id) for v in page.versions] + [(p, None) for p in page.common_prefixes]
        if not page.is_truncated:
            break
        key_marker = page.next_key_marker or ""
        vid_marker = page.next_version_id_marker or ""
    assert [k for k, _ in seen] == ["a", "d/", "e", "e", "f"]
    assert len({v for _, v in seen if v}) == 4
