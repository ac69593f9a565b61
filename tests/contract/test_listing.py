"""Listing: prefix, delimiter, pages and their markers (the one shape V1 and V2 share).

The HTTP layer renders a :class:`ListPage` as V1 (``marker`` = ``start_after``,
``NextMarker`` = ``next_marker``) or V2 (the continuation token encodes
``next_marker``; ``start-after`` is ``start_after``), so one contract covers
both: paging by ``next_marker`` visits every entry once, in UTF-8 byte order.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted

from pachs3gw.s3.interfaces import IBackend, ListPage

from .helpers import md5, put

deferred = pytest_twisted.ensureDeferred

KEYS = [
    "a.txt",
    "b/1",
    "b/2",
    "b/c/3",
    "b/c/4",
    "b0",
    "c/x/y/z",
    "d-e-f",
    "d-e-g",
    "d-h",
    "zz",
    "ü",
]


async def _fill(backend: IBackend, bucket: str) -> None:
    for key in KEYS:
        await put(backend, bucket, key, key.encode())


def _expected(prefix: str, delimiter: str, start_after: str = "") -> list[str]:
    """S3's answer, computed the simple way (entries: keys and common prefixes)."""
    out: list[str] = []
    for key in sorted(KEYS, key=lambda k: k.encode()):
        if not key.startswith(prefix):
            continue
        entry = key
        if delimiter:
            i = key.find(delimiter, len(prefix))
            if i >= 0:
                entry = key[: i + len(delimiter)]
        if entry.encode() <= start_after.encode() or (out and out[-1] == entry):
            continue
        out.append(entry)
    return out


async def _all_pages(
    backend: IBackend, bucket: str, prefix: str, delimiter: str, max_keys: int
) -> tuple[list[str], list[ListPage]]:
    entries: list[str] = []
    pages: list[ListPage] = []
    marker = ""
    while True:
        page = await backend.list_objects(bucket, prefix, delimiter, marker, max_keys)
        pages.append(page)
        got = [o.key for o in page.contents] + list(page.common_prefixes)
        assert len(got) <= max_keys
        entries += sorted(got, key=lambda e: e.encode())
        if not page.is_truncated:
            assert page.next_marker is None
            return entries, pages
        assert page.next_marker is not None
        assert page.next_marker == max(got, key=lambda e: e.encode())
        marker = page.next_marker
        assert len(pages) < 50


CASES = [
    ("", ""),
    ("", "/"),
    ("b", "/"),
    ("b/", "/"),
    ("b/c/", "/"),
    ("", "-"),
    ("d-", "-"),
    ("c/", ""),
    ("nothing", "/"),
]


@deferred
async def test_one_page_holds_the_keys_and_common_prefixes(backend: IBackend, bucket: str) -> None:
    await _fill(backend, bucket)
    for prefix, delimiter in CASES:
        page = await backend.list_objects(bucket, prefix, delimiter, "", 1000)
        assert not page.is_truncated and page.next_marker is None
        keys = [o.key for o in page.contents]
        assert keys == sorted(keys, key=lambda k: k.encode())
        got = sorted(keys + list(page.common_prefixes))
        assert got == sorted(_expected(prefix, delimiter)), (prefix, delimiter)
        assert all(p.endswith(delimiter) and p.startswith(prefix) for p in page.common_prefixes)


@deferred
async def test_entries_carry_size_etag_and_time(backend: IBackend, bucket: str) -> None:
    await _fill(backend, bucket)
    page = await backend.list_objects(bucket, "b/", "/", "", 1000)
    assert [(o.key, o.size, o.etag) for o in page.contents] == [
        ("b/1", 3, md5(b"b/1")),
        ("b/2", 3, md5(b"b/2")),
    ]
    assert all(o.last_modified.tzinfo is not None for o in page.contents)
    assert list(page.common_prefixes) == ["b/c/"]


@deferred
async def test_pages_by_next_marker_visit_every_entry_once(backend: IBackend, bucket: str) -> None:
    await _fill(backend, bucket)
    for prefix, delimiter in [("", ""), ("", "/"), ("", "-"), ("b/", "/")]:
        for max_keys in (1, 2, 5):
            entries, _ = await _all_pages(backend, bucket, prefix, delimiter, max_keys)
            assert entries == _expected(prefix, delimiter), (prefix, delimiter, max_keys)


@deferred
async def test_start_after_lists_strictly_after(backend: IBackend, bucket: str) -> None:
    await _fill(backend, bucket)
    for start_after, delimiter in [
        ("b/1", ""),
        ("b/", "/"),
        ("b/c/3", "/"),
        ("b0", "/"),
        ("d-e-f", "-"),
        ("d-e-", "-"),
        ("a", "/"),
        ("zzz", ""),
    ]:
        page = await backend.list_objects(bucket, "", delimiter, start_after, 1000)
        got = [o.key for o in page.contents] + list(page.common_prefixes)
        assert sorted(got, key=lambda e: e.encode()) == _expected("", delimiter, start_after), (
            start_after,
            delimiter,
        )


@deferred
async def test_empty_bucket_and_max_keys_zero(backend: IBackend, bucket: str) -> None:
    page = await backend.list_objects(bucket, "", "/", "", 1000)
    assert (list(page.contents), list(page.common_prefixes), page.is_truncated) == ([], [], False)
    await put(backend, bucket, "k", b"x")
    # max-keys 0: nothing, and not truncated (S3; s3-tests test_bucket_list_maxkeys_zero).
    page = await backend.list_objects(bucket, "", "", "", 0)
    assert (list(page.contents), list(page.common_prefixes)) == ([], [])
    assert (page.is_truncated, page.next_marker) == (False, None)


@deferred
async def test_deleted_keys_are_not_listed(backend: IBackend, bucket: str) -> None:
    await _fill(backend, bucket)
    await backend.delete_objects(bucket, [("b/c/3", None), ("b/c/4", None), ("zz", None)])
    page = await backend.list_objects(bucket, "b/", "/", "", 1000)
    assert [o.key for o in page.contents] == ["b/1", "b/2"]
    assert list(page.common_prefixes) == []
    page = await backend.list_objects(bucket, "", "", "", 1000)
    assert "zz" not in [o.key for o in page.contents]


