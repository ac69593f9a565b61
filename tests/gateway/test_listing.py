"""ListObjects paging, prefixes and delimiters against the embedded PFS server."""

from __future__ import annotations

import random
from typing import Any, Iterator

import pytest
import pytest_twisted
from twisted.internet.defer import ensureDeferred

from pachs3gw.gateway import PfsBackend
from pachs3gw.pfs import client as pfs_client
from pachs3gw.pfs import refs
from pachs3gw.pfs.client import PfsClient
from pachs3gw.s3.interfaces import ObjectMetadata

from .conftest import Body

inline = pytest_twisted.inlineCallbacks

#: No key is both a file and a directory prefix ("a" and "a/b"): PFS cannot hold both.
KEYS = [
    "a-b",
    "a.txt",
    "a/b/c",
    "a/b/d",
    "a/bc",
    "a/c",
    "a/é",
    "a/z/y/x",
    "b",
    "b.txt",
    "dir/sub/1",
    "dir/sub/2",
    "dir/sub2/1",
    "dir/x",
    "e+f",
    "z",
]


def s3_list(keys: list[str], prefix: str, delimiter: str, start_after: str, max_keys: int):
    """What S3 answers, computed from a sorted key list."""
    contents: list[str] = []
    prefixes: list[str] = []
    last = None
    for key in sorted(keys, key=lambda k: k.encode()):
        if not key.startswith(prefix) or key.encode() <= start_after.encode():
            continue
        if delimiter:
            cut = key.find(delimiter, len(prefix))
            if cut >= 0:
                group = key[: cut + len(delimiter)]
                if group in prefixes or group.encode() <= start_after.encode():
                    continue
                if len(contents) + len(prefixes) == max_keys:
                    return contents, prefixes, True, last
                prefixes.append(group)
                last = group
                continue
        if len(contents) + len(prefixes) == max_keys:
            return contents, prefixes, True, last
        contents.append(key)
        last = key
    return contents, prefixes, False, last


async def all_pages(backend: PfsBackend, bucket: str, prefix: str, delimiter: str, max_keys: int):
    contents: list[str] = []
    prefixes: list[str] = []
    marker = ""
    pages = 0
    while True:
        page = await backend.list_objects(bucket, prefix, delimiter, marker, max_keys)
        pages += 1
        contents += [o.key for o in page.contents]
        prefixes += list(page.common_prefixes)
        if not page.is_truncated:
            return contents, prefixes, pages
        assert page.next_marker and page.next_marker > marker
        marker = page.next_marker


def bulk_put(client: PfsClient, repo: str, keys: list[str]) -> Any:
    def requests() -> Iterator[Any]:
        yield pfs_client.set_commit(refs.branch_head(repo, "master"))
        for key in keys:
            yield pfs_client.add_bytes("/" + key, key.encode())

    return client.modify_file(requests())


@pytest.fixture
def listed_bucket(backend: PfsBackend, client: PfsClient, bucket_name: str) -> Any:
    @pytest_twisted.inlineCallbacks
    def setup() -> Any:
        yield backend.create_bucket(bucket_name)
        for key in KEYS[:3]:
            yield backend.put_object(bucket_name, key, Body(key.encode()), ObjectMetadata())
        yield bulk_put(client, bucket_name.split(".")[1], KEYS[3:])

    pytest_twisted.blockon(setup())
    return bucket_name


@pytest.mark.parametrize("delimiter", ["", "/", "b", "/s"])
@pytest.mark.parametrize("prefix", ["", "a", "a/", "a/b", "dir/s", "q"])
@inline
def test_listing_matches_s3_for_every_page_size(
    backend: PfsBackend, listed_bucket: str, prefix: str, delimiter: str
) -> Any:
    expected = s3_list(KEYS, prefix, delimiter, "", 10**6)
    for max_keys in (1, 2, 3, 1000):
        contents, prefixes, _ = yield ensureDeferred(
            all_pages(backend, listed_bucket, prefix, delimiter, max_keys)
        )
        assert (contents, prefixes) == (expected[0], expected[1]), max_keys


@pytest.mark.parametrize(
    "start_after", ["", "a", "a/b", "a/b/", "a/b/c", "a/bc", "b", "dir/sub/1", "zz"]
)
@pytest.mark.parametrize("delimiter", ["", "/"])
@inline
def test_start_after_is_strict(
    backend: PfsBackend, listed_bucket: str, start_after: str, delimiter: str
) -> Any:
    page = yield backend.list_objects(listed_bucket, "", delimiter, start_after, 1000)
    expected = s3_list(KEYS, "", delimiter, start_after, 1000)
    assert [o.key for o in page.contents] == expected[0]
    if not (delimiter and start_after.endswith("/")):
        assert list(page.common_prefixes) == expected[1]


@inline
def test_sizes_and_etags_in_listing(backend: PfsBackend, listed_bucket: str) -> Any:
    page = yield backend.list_objects(listed_bucket, "a", "", "", 2)
    assert [o.key for o in page.contents] == ["a-b", "a.txt"]
    assert page.is_truncated and page.next_marker == "a.txt"
    import hashlib

    assert page.contents[0].etag == hashlib.md5(b"a-b").hexdigest()
    assert page.contents[0].size == 3


@inline
def test_2500_keys_page_by_1000_without_relisting(
    backend: PfsBackend, client: PfsClient, bucket_name: str
) -> Any:
    yield backend.create_bucket(bucket_name)
    keys = [f"data/{i:05d}.bin" for i in range(2500)]
    random.Random(1).shuffle(keys)
    yield bulk_put(client, bucket_name.split(".")[1], keys)
    contents, prefixes, pages = yield ensureDeferred(
        all_pages(backend, bucket_name, "", "", 1000)
    )
    assert contents == sorted(keys) and pages == 3
    contents, prefixes, pages = yield ensureDeferred(
        all_pages(backend, bucket_name, "data/", "/", 1000)
    )
    assert contents == sorted(keys) and pages == 3
    contents, prefixes, pages = yield ensureDeferred(
        all_pages(backend, bucket_name, "", "/", 1000)
    )
    assert contents == [] and prefixes == ["data/"]
