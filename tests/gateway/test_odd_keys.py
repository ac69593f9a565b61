"""Keys PFS refuses or would rewrite (``../x``, ``a//b``, ``/lead``, ``.``, ...) work like any other.

Over both transports: every operation round-trips them, plain keys keep
their plain paths, and listings (V1/V2 pages, versions) give back the
original keys in S3's byte order with exact prefix, delimiter and marker
semantics, checked page by page against a model of S3's listing.
"""

from __future__ import annotations

import hashlib
from typing import Any, Iterator

import pytest
import pytest_twisted
from twisted.internet.defer import ensureDeferred

from pachs3gw.gateway import PfsBackend, PfsBackendFactory
from pachs3gw.gateway.keys import ENCODED_DIR, KeyPaths, encoded_path
from pachs3gw.pfs import client as pfs_client
from pachs3gw.pfs import errors as pfs_errors
from pachs3gw.pfs import refs
from pachs3gw.pfs.client import PfsClient
from pachs3gw.s3 import errors
from pachs3gw.s3.interfaces import CompletedPart, CopySource, ObjectMetadata

from .conftest import Body
from .test_objects import failure_of, read_all

inline = pytest_twisted.inlineCallbacks

ODD = ["../x", "./x", "a//b", "/lead", ".", "..", "a/./b", "a//", "/", "x/.s3folder", "ctl\x01\x1f"]
#: Plain on the embedded store, encoded on pachd.
DEPENDS = ["café", "photo (1).jpg"]
#: A mix for the listing model: folder keys with names below ``.s3folder`` beside them.
#: (No plain key is also a directory of others, "a" beside "a/b": PFS has no such pair.)
MIX = sorted(
    {
        "a/", "a//b", "a/-x", "a/.env", "a/b/", "a/b/-c", "a/b/c", "a/./b", "a/../c", "a/b.",
        "/lead", "//x", "../x", "./x", ".", "..", "b/", "b/.s3folder", "café", "c/d/e",
        ".pachs3gw-keys/z", ".pachs3gw-keys", "z", "\x01ctl", " space", "a-b", "a0", "a//",
    }
)


def repo_of(bucket: str) -> str:
    return bucket.split(".")[1]


def model(keys: list[str], prefix: str, delimiter: str, start_after: str) -> list[tuple[str, bool]]:
    """S3's ListObjects entries after ``start_after``: (key or common prefix, is_prefix)."""
    out: list[tuple[str, bool]] = []
    for key in sorted(keys):
        if key <= start_after or not key.startswith(prefix):
            continue
        cut = key.find(delimiter, len(prefix)) if delimiter else -1
        if cut < 0:
            out.append((key, False))
            continue
        group = key[: cut + len(delimiter)]
        if not start_after.startswith(group) and (not out or out[-1] != (group, True)):
            out.append((group, True))
    return out


async def pages(
    backend: PfsBackend, bucket: str, prefix: str, delimiter: str, max_keys: int
) -> Iterator[Any]:
    marker = ""
    result = []
    while True:
        page = await backend.list_objects(bucket, prefix, delimiter, marker, max_keys)
        result.append(page)
        if not page.is_truncated:
            return iter(result)
        assert page.next_marker and page.next_marker > marker
        marker = page.next_marker


async def put_all(backend: PfsBackend, bucket: str, keys: list[str]) -> None:
    for key in keys:
        await backend.put_object(bucket, key, Body(key.encode("utf-8")), ObjectMetadata())


@inline
def test_each_odd_key_round_trips_put_get_head_list_copy_delete(
    backend: PfsBackend, client: PfsClient, bucket_name: str
) -> Any:
    yield backend.create_bucket(bucket_name)
    head = refs.branch_head(repo_of(bucket_name), "master")
    for key in ODD + DEPENDS:
        body = b"bytes of " + key.encode("utf-8")
        put = yield backend.put_object(bucket_name, key, Body(body), ObjectMetadata())
        assert put.etag == hashlib.md5(body).hexdigest()
        reader = yield backend.get_object(bucket_name, key, None)
        assert (yield read_all(reader)) == body, key
        info = yield backend.head_object(bucket_name, key, None)
        assert (info.key, info.size, info.etag) == (key, len(body), put.etag)
        page = yield backend.list_objects(bucket_name, key, "", "", 10)
        assert [o.key for o in page.contents] == [key] and page.contents[0].etag == put.etag
        # Copies both ways between an odd and a plain key, then delete.
        yield backend.copy_object(CopySource(bucket_name, key), bucket_name, "plain-copy", None)
        reader = yield backend.get_object(bucket_name, "plain-copy", None)
        assert (yield read_all(reader)) == body
        yield backend.copy_object(CopySource(bucket_name, "plain-copy"), bucket_name, key + "2", None)
        reader = yield backend.get_object(bucket_name, key + "2", None)
        assert (yield read_all(reader)) == body
        for gone in (key, key + "2"):
            yield backend.delete_object(bucket_name, gone, None)
            e = yield ensureDeferred(failure_of(backend.head_object(bucket_name, gone, None)))
            assert isinstance(e, errors.NoSuchKey), (gone, e)
        # Versions of the key are still there, under its own name.
        reader = yield backend.get_object(bucket_name, key, put.version_id)
        assert (yield read_all(reader)) == body
    page = yield backend.list_objects(bucket_name, "", "", "", 100)
    assert [o.key for o in page.contents] == ["plain-copy"]
    # The odd keys were encoded files; none was aliased onto a plain path.
    top = yield client.list_files(refs.file(head, "/"))
    assert sorted(i.file.path for i in top) == ["/plain-copy"]


@inline
def test_odd_keys_keep_plain_keys_at_their_plain_paths(
    backend: PfsBackend, client: PfsClient, bucket_name: str
) -> Any:
    yield backend.create_bucket(bucket_name)
    yield put_all(backend, bucket_name, ["dir/a.csv", "dir/", "../x", "a//b"])
    head = refs.branch_head(repo_of(bucket_name), "master")
    walked = yield client.walk_files(refs.file(head, "/"))
    files = sorted(i.file.path for i in walked if not i.file.path.endswith("/"))
    assert files == sorted(
        ["/dir/a.csv", "/dir/.s3folder", encoded_path("../x"), encoded_path("a//b")]
    )
    assert encoded_path("../x") == ENCODED_DIR + "2e2e2f78"


@inline
def test_multipart_upload_of_an_odd_key(factory: PfsBackendFactory, bucket_name: str) -> Any:
    backend = factory.backend_for(None)
    factory.multipart.min_part_size = 1
    yield backend.create_bucket(bucket_name)
    for key in ("../up", "a//mp/", "/lead/mp"):
        upload_id = yield backend.create_multipart_upload(bucket_name, key, ObjectMetadata())
        uploads = yield backend.list_multipart_uploads(bucket_name, "", "", "", "", 10)
        assert key in [u.key for u in uploads.uploads]
        one = yield backend.upload_part(bucket_name, key, upload_id, 1, Body(b"first-"))
        two = yield backend.upload_part(bucket_name, key, upload_id, 2, Body(b"second"))
        yield backend.complete_multipart_upload(
            bucket_name, key, upload_id, [CompletedPart(1, one.etag), CompletedPart(2, two.etag)]
        )
        reader = yield backend.get_object(bucket_name, key, None)
        assert (yield read_all(reader)) == b"first-second"
        info = yield backend.head_object(bucket_name, key, None)
        assert info.etag.endswith("-2")
    page = yield backend.list_objects(bucket_name, "", "", "", 10)
    assert [o.key for o in page.contents] == ["../up", "/lead/mp", "a//mp/"]


@inline
def test_listing_a_mix_of_odd_and_plain_keys_matches_s3_page_by_page(
    backend: PfsBackend, bucket_name: str
) -> Any:
    yield backend.create_bucket(bucket_name)
    yield ensureDeferred(put_all(backend, bucket_name, MIX))
    for prefix in ["", "a", "a/", "a//", "a/b/", ".", "/", ".pachs3gw-keys", "b/", "zz"]:
        for delimiter in ["", "/", "b", "-"]:
            expected = model(MIX, prefix, delimiter, "")
            for max_keys in (1, 3, 1000):
                got: list[tuple[str, bool]] = []
                for page in (yield ensureDeferred(pages(backend, bucket_name, prefix, delimiter, max_keys))):
                    entries = sorted(
                        [(o.key, False) for o in page.contents]
                        + [(p, True) for p in page.common_prefixes]
                    )
                    assert len(entries) <= max_keys
                    assert page.is_truncated == (len(got) + len(entries) < len(expected))
                    if page.is_truncated:
                        assert page.next_marker == entries[-1][0]
                    got += entries
                assert got == expected, (prefix, delimiter, max_keys)


@inline
def test_prefix_and_delimiter_on_empty_segments_as_s3_answers(
    backend: PfsBackend, bucket_name: str
) -> Any:
    yield backend.create_bucket(bucket_name)
    yield ensureDeferred(put_all(backend, bucket_name, ["a//b", "a/c", "/lead"]))
    page = yield backend.list_objects(bucket_name, "a/", "", "", 10)
    assert [o.key for o in page.contents] == ["a//b", "a/c"]
    page = yield backend.list_objects(bucket_name, "", "/", "", 10)
    assert list(page.common_prefixes) == ["/", "a/"] and not page.contents
    page = yield backend.list_objects(bucket_name, "a/", "/", "", 10)
    assert list(page.common_prefixes) == ["a//"] and [o.key for o in page.contents] == ["a/c"]
    # V1/V2 paging from a marker inside a group that is spread over both places.
    page = yield backend.list_objects(bucket_name, "", "/", "/", 10)
    assert list(page.common_prefixes) == ["a/"]
    page = yield backend.list_objects(bucket_name, "", "", "a//b", 10)
    assert [o.key for o in page.contents] == ["a/c"]


@inline
def test_list_object_versions_gives_the_original_keys_in_order(
    backend: PfsBackend, bucket_name: str
) -> Any:
    yield backend.create_bucket(bucket_name)
    yield ensureDeferred(put_all(backend, bucket_name, MIX))
    yield backend.put_object(bucket_name, "../x", Body(b"again"), ObjectMetadata())
    for prefix, delimiter in [("", ""), ("a/", "/"), ("", "/"), (".", "")]:
        expected = model(MIX, prefix, delimiter, "")
        page = yield backend.list_object_versions(bucket_name, prefix, delimiter, "", "", 1000)
        keys = sorted({v.key for v in page.versions})
        assert keys == [k for k, is_prefix in expected if not is_prefix]
        assert list(page.common_prefixes) == [k for k, is_prefix in expected if is_prefix]
    page = yield backend.list_object_versions(bucket_name, "../", "", "", "", 10)
    assert [(v.key, v.is_latest) for v in page.versions] == [("../x", True), ("../x", False)]


@inline
def test_junk_in_the_encoded_directory_is_not_listed(
    backend: PfsBackend, client: PfsClient, bucket_name: str
) -> Any:
    yield backend.create_bucket(bucket_name)
    yield backend.put_object(bucket_name, "../x", Body(b"x"), ObjectMetadata())
    head = refs.branch_head(repo_of(bucket_name), "master")
    yield client.modify_file(
        [pfs_client.set_commit(head), pfs_client.add_empty(ENCODED_DIR + "not-hex"),
         pfs_client.add_empty(ENCODED_DIR + "6162")]  # "ab", a plain key
    )
    page = yield backend.list_objects(bucket_name, "", "", "", 10)
    assert [o.key for o in page.contents] == ["../x"]


# The server's path rules ----------------------------------------------------------


def fresh_backend(factory: PfsBackendFactory, client: PfsClient, keys: KeyPaths) -> PfsBackend:
    """A backend as another gateway process would have: its own knowledge of the server."""
    return PfsBackend(
        client, None, None, factory.metadata, factory.multipart, factory.histories, keys
    )


@inline
def test_the_embedded_store_keeps_keys_pachd_refuses_plain_and_the_probe_commits_nothing(
    factory: PfsBackendFactory, client: PfsClient, bucket_name: str
) -> Any:
    keys = KeyPaths()
    backend = fresh_backend(factory, client, keys)
    yield backend.create_bucket(bucket_name)
    yield backend.put_object(bucket_name, "seed", Body(b"s"), ObjectMetadata())
    branch = refs.branch(repo_of(bucket_name), "master")
    before = (yield client.inspect_branch(branch)).head.id
    yield ensureDeferred(keys.learn(client, refs.branch_head(repo_of(bucket_name), "master")))
    assert keys.allows_any_characters is True
    assert (yield client.inspect_branch(branch)).head.id == before
    yield backend.put_object(bucket_name, "café", Body(b"c"), ObjectMetadata())
    info = yield client.inspect_file(refs.file(refs.branch_head(repo_of(bucket_name), "master"), "/café"))
    assert info.size_bytes == 1


@inline
def test_keys_written_as_on_pachd_read_back_through_a_gateway_that_does_not_know_yet(
    factory: PfsBackendFactory, client: PfsClient, bucket_name: str
) -> Any:
    strict = fresh_backend(factory, client, KeyPaths(allows_any_characters=False))
    yield strict.create_bucket(bucket_name)
    yield ensureDeferred(put_all(strict, bucket_name, ["café", "photo (1).jpg", "plain"]))
    head = refs.branch_head(repo_of(bucket_name), "master")
    info = yield client.inspect_file(refs.file(head, encoded_path("café")))
    assert info.size_bytes == len("café".encode())
    e = yield ensureDeferred(failure_of(client.inspect_file(refs.file(head, "/café"))))
    assert isinstance(e, pfs_errors.FileNotFound)
    unknown = KeyPaths()
    reader_backend = fresh_backend(factory, client, unknown)
    reader = yield reader_backend.get_object(bucket_name, "café", None)
    assert (yield read_all(reader)) == "café".encode()
    assert unknown.allows_any_characters is None  # found encoded: proves nothing
    page = yield reader_backend.list_objects(bucket_name, "", "", "", 10)
    assert [o.key for o in page.contents] == ["café", "photo (1).jpg", "plain"]
    yield reader_backend.delete_object(bucket_name, "café", None)
    e = yield ensureDeferred(failure_of(reader_backend.head_object(bucket_name, "café", None)))
    assert isinstance(e, errors.NoSuchKey)


@inline
def test_a_read_finding_a_key_pachd_refuses_at_its_plain_path_learns_the_server_takes_it(
    factory: PfsBackendFactory, client: PfsClient, bucket_name: str
) -> Any:
    writer = fresh_backend(factory, client, KeyPaths(allows_any_characters=True))
    yield writer.create_bucket(bucket_name)
    yield writer.put_object(bucket_name, "café", Body(b"c"), ObjectMetadata())
    unknown = KeyPaths()
    yield fresh_backend(factory, client, unknown).head_object(bucket_name, "café", None)
    assert unknown.allows_any_characters is True and unknown.probes == 0


@pytest.mark.parametrize("key", ["../x", "a//b"])
def test_placement_does_not_depend_on_the_server(key: str) -> None:
    assert KeyPaths(True).read_paths(key) == KeyPaths(False).read_paths(key) == (encoded_path(key),)


@inline
def test_a_commit_without_encoded_keys_is_remembered_and_a_later_one_is_listed_again(
    factory: PfsBackendFactory, client: PfsClient, bucket_name: str
) -> Any:
    keys = KeyPaths()
    backend = fresh_backend(factory, client, keys)
    yield backend.create_bucket(bucket_name)
    yield backend.put_object(bucket_name, "plain", Body(b"p"), ObjectMetadata())
    head = (yield client.inspect_branch(refs.branch(repo_of(bucket_name), "master"))).head.id
    page = yield backend.list_objects(bucket_name, "", "", "", 10)
    assert [o.key for o in page.contents] == ["plain"]
    assert keys.has_no_encoded_keys(head)
    yield backend.put_object(bucket_name, "../odd", Body(b"o"), ObjectMetadata())
    page = yield backend.list_objects(bucket_name, "", "", "", 10)
    assert [o.key for o in page.contents] == ["../odd", "plain"]
