"""ListObjects over ListFile / WalkFile, one page at a time.

A page never re-lists from the start: it asks PFS for the entries strictly
after a pagination marker derived from ``start_after`` (and from the
prefix), ``number`` at a time, and stops once the page is full.

- Delimiter ``/`` lines up with PFS directories: the page is a ListFile of
  the prefix's directory, where every subdirectory is one entry (one common
  prefix) whatever it holds.
- No delimiter: a WalkFile of the prefix's directory, skipping directories.
- Any other delimiter: the same walk, grouping keys into common prefixes;
  on reaching a group the walk restarts after the group's last possible key,
  so a group costs one request, not one entry per key in it.

Keys come back in PFS path order, which is S3's UTF-8 byte order (paths of
directories carry their trailing ``/``).
"""

from __future__ import annotations

from typing import Awaitable, Callable

import attrs

from pachs3gw.gateway.keys import marker_to_path, path_to_key
from pachs3gw.pfs import errors as pfs_errors
from pachs3gw.pfs import refs
from pachs3gw.pfs.client import PfsClient
from pachs3gw.proto import pfs_v2_pb2 as pfs

#: Above every character of a key: ``group + TOP*4`` passes a whole group.
TOP = "\U0010ffff"
#: Largest number of entries asked for in one request.
MAX_BATCH = 1000


@attrs.frozen
class RawPage:
    """A listing page before metadata: files by key, and common prefixes."""

    files: list[tuple[str, pfs.FileInfo]]
    common_prefixes: list[str]
    is_truncated: bool
    next_marker: str | None


def below(prefix: str) -> str | None:
    """A path marker just below every path starting with ``"/" + prefix``."""
    if not prefix:
        return None
    last = prefix[-1]
    if last == "\x00":
        return "/" + prefix[:-1]
    return "/" + prefix[:-1] + chr(ord(last) - 1) + TOP


def _max_marker(a: str | None, b: str | None) -> str | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def _dir_of(prefix: str) -> str:
    """The directory path holding every key that starts with ``prefix``."""
    return "/" + prefix[: prefix.rfind("/") + 1]


async def list_page(
    client: PfsClient,
    commit: pfs.Commit,
    prefix: str,
    delimiter: str,
    start_after: str,
    max_keys: int,
) -> RawPage:
    """One page of keys > ``start_after`` starting with ``prefix``."""
    if max_keys <= 0:
        return RawPage([], [], False, None)
    if delimiter == "/":
        return await _list_by_directory(client, commit, prefix, start_after, max_keys)
    return await _walk(client, commit, prefix, delimiter, start_after, max_keys)


async def _fetch(
    call: Callable[..., Awaitable[list[pfs.FileInfo]]],
    file: pfs.File,
    after: str | None,
    number: int,
) -> list[pfs.FileInfo]:
    try:
        return await call(file, after=after, number=number)
    except (pfs_errors.FileNotFound, pfs_errors.NotARegularFile):
        return []  # the prefix's directory does not exist (or is a file)


async def _list_by_directory(
    client: PfsClient, commit: pfs.Commit, prefix: str, start_after: str, max_keys: int
) -> RawPage:
    directory = _dir_of(prefix)
    marker = _max_marker(below(prefix), _directory_marker(directory, start_after))
    files: list[tuple[str, pfs.FileInfo]] = []
    prefixes: list[str] = []
    last: str | None = None
    while True:
        want = min(max_keys - len(files) - len(prefixes) + 1, MAX_BATCH)
        batch = await _fetch(
            client.list_files, refs.file(commit, directory), marker, want
        )
        for info in batch:
            path = info.file.path
            marker = path
            is_dir = info.file_type == pfs.DIR
            if is_dir:
                key = path[1:] if path.endswith("/") else path[1:] + "/"
            else:
                key = path_to_key(path)
            if not key.startswith(prefix):
                if key > prefix:
                    return RawPage(files, prefixes, False, last)
                continue
            if key <= start_after:
                continue
            if len(files) + len(prefixes) == max_keys:
                return RawPage(files, prefixes, True, last)
            if is_dir:
                prefixes.append(key)
            else:
                files.append((key, info))
            last = key
        if len(batch) < want:
            return RawPage(files, prefixes, False, last)


def _directory_marker(directory: str, start_after: str) -> str | None:
    """The ListFile marker for ``start_after`` among the children of ``directory``.

    A ``start_after`` below a subdirectory (or equal to the common prefix the
    last page ended on) passes that whole subdirectory.
    """
    if not start_after:
        return None
    path = "/" + start_after
    if path.startswith(directory):
        rest = path[len(directory) :]
        cut = rest.find("/")
        if cut >= 0:
            # Inside (or exactly) the group ``directory + rest[:cut+1]``.
            return directory + rest[: cut + 1]
    return marker_to_path(start_after)


async def _walk(
    client: PfsClient,
    commit: pfs.Commit,
    prefix: str,
    delimiter: str,
    start_after: str,
    max_keys: int,
) -> RawPage:
    directory = _dir_of(prefix)
    marker = _max_marker(below(prefix), marker_to_path(start_after) if start_after else None)
    files: list[tuple[str, pfs.FileInfo]] = []
    prefixes: list[str] = []
    last: str | None = None
    batch_size = MAX_BATCH if not delimiter else 64
    while True:
        want = min(max_keys - len(files) - len(prefixes) + 1, batch_size)
        batch = await _fetch(client.walk_files, refs.file(commit, directory), marker, want)
        jumped = False
        for info in batch:
            path = info.file.path
            marker = path
            if info.file_type == pfs.DIR:
                continue
            key = path_to_key(path)
            if not key.startswith(prefix):
                if key > prefix:
                    return RawPage(files, prefixes, False, last)
                continue
            if key <= start_after:
                continue
            group = None
            if delimiter:
                cut = key.find(delimiter, len(prefix))
                if cut >= 0:
                    group = key[: cut + len(delimiter)]
            if group is not None and (group <= start_after or group == last):
                # Already reported: pass the rest of the group.
                marker = max(path, "/" + group + TOP * 4)
                jumped = True
                break
            if len(files) + len(prefixes) == max_keys:
                return RawPage(files, prefixes, True, last)
            if group is not None:
                prefixes.append(group)
                last = group
                marker = max(path, "/" + group + TOP * 4)
                jumped = True
                break
            files.append((key, info))
            last = key
        if jumped:
            batch_size = 64
            continue
        if len(batch) < want:
            return RawPage(files, prefixes, False, last)
        if delimiter:
            batch_size = min(batch_size * 2, MAX_BATCH)
