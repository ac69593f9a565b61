"""ListObjects over ListFile / WalkFile, one page at a time.

Keys live in two places (:mod:`pachs3gw.gateway.keys`): most at their plain
path, the rest as flat hex names in the encoded directory. A page is the
merge of two sorted streams, each read from the page's start for at most
``max_keys + 1`` entries (so the merge knows whether more follow): the cost
of a page stays bounded by its size, and the two reads run concurrently.
Either stream is skipped when it cannot hold a key with the prefix.

Neither stream re-lists from the start: each asks PFS for the entries
strictly after a pagination marker derived from ``start_after`` (and from
the prefix), ``number`` at a time, and stops once it has enough.

Plain keys:

- Delimiter ``/`` lines up with PFS directories: the page is a ListFile of
  the prefix's directory, where every subdirectory is one entry (one common
  prefix) whatever it holds.
- No delimiter: a WalkFile of the prefix's directory, skipping directories.
- Any other delimiter: the same walk, grouping keys into common prefixes;
  on reaching a group the walk restarts after the group's last possible key,
  so a group costs one request, not one entry per key in it.

Plain paths sort as their keys do (paths of directories carry their
trailing ``/``), except a folder key ``d/``, stored as ``/d/.s3folder``:
S3 puts it before everything in ``d/``, PFS after the names that sort below
``.s3folder`` (``d/-x``, ``d/.env``). :class:`_Folders` puts it back in
place: on meeting such a name in a directory not yet settled, it looks the
folder key up (one InspectFile per such directory met).

Encoded keys: a ListFile of the flat encoded directory from the hex of the
marker; hex sorts as the keys' bytes do, and grouping jumps past a group as
above.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Coroutine

import attrs
from twisted.internet.defer import ensureDeferred

from pachs3gw.gateway.keys import (
    ENCODED_DIR,
    FOLDER_MARKER,
    KeyPaths,
    could_be_plain_prefix,
    hex_prefix,
    path_to_key,
)
from pachs3gw.pfs import errors as pfs_errors
from pachs3gw.pfs import refs
from pachs3gw.pfs.client import PfsClient
from pachs3gw.proto import pfs_v2_pb2 as pfs

#: Above every character of a key: ``group + TOP*4`` passes a whole group.
TOP = "\U0010ffff"
#: Largest number of entries asked for in one request.
MAX_BATCH = 1000
#: Above every hex digit: ``hex + ABOVE_HEX`` passes every name starting with ``hex``.
ABOVE_HEX = "g"
_HEX_DIGITS = "0123456789abcdef"

#: A key and its file, or a common prefix (file None).
Entry = tuple[str, "pfs.FileInfo | None"]


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


def _below_hex(name: str) -> str | None:
    """A marker just below every hex name starting with ``name``."""
    if not name:
        return None
    if name[-1] == "0":
        return ENCODED_DIR + name[:-1]
    return ENCODED_DIR + name[:-1] + _HEX_DIGITS[_HEX_DIGITS.index(name[-1]) - 1] + ABOVE_HEX


def _max_marker(a: str | None, b: str | None) -> str | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def _dir_of(prefix: str) -> str:
    """The directory path holding every key that starts with ``prefix``."""
    return "/" + prefix[: prefix.rfind("/") + 1]


def _group(key: str, prefix: str, delimiter: str) -> str | None:
    """The common prefix ``key`` rolls up into, if any."""
    if not delimiter:
        return None
    cut = key.find(delimiter, len(prefix))
    return key[: cut + len(delimiter)] if cut >= 0 else None


@attrs.define
class _Page:
    """One stream's entries of a page, taken in key order: the rule every reader shares.

    Readers differ in where their entries come from and in how they skip
    past a group; which entry counts, when a common prefix is reported and
    when the page is complete is decided here once.
    """

    prefix: str
    delimiter: str
    start_after: str
    want: int
    out: list[Entry] = attrs.field(factory=list)
    #: The page has all it can take: the reader returns ``out``.
    done: bool = False
    _last: str | None = None

    def offer(self, key: str, file: pfs.FileInfo | None) -> str | None:
        """Take the next listed entry; the group its reader must pass, if any.

        ``done`` is set once a key beyond the prefix is met or the page is full.
        """
        if not key.startswith(self.prefix):
            self.done = key > self.prefix
            return None
        if key <= self.start_after:
            return None
        group = _group(key, self.prefix, self.delimiter)
        if group is not None:
            if not (group <= self.start_after or group == self._last):
                self._add(group, None)
            return None if self.done else group
        self._add(key, file)
        return None

    def _add(self, key: str, file: pfs.FileInfo | None) -> None:
        self.out.append((key, file))
        self._last = key
        self.done = len(self.out) == self.want


async def list_page(
    client: PfsClient,
    commit: pfs.Commit,
    prefix: str,
    delimiter: str,
    start_after: str,
    max_keys: int,
    keys: KeyPaths | None = None,
) -> RawPage:
    """One page of keys > ``start_after`` starting with ``prefix``.

    :param keys: remembers the commits that hold no encoded key.
    """
    if max_keys <= 0:
        return RawPage([], [], False, None)
    want = max_keys + 1
    encoded = _encoded(client, commit, prefix, delimiter, start_after, want, keys)
    if not could_be_plain_prefix(prefix):
        streams = [await encoded]
    elif delimiter == "/":
        streams = await _both(
            _plain_by_directory(client, commit, prefix, start_after, want), encoded
        )
    else:
        streams = await _both(
            _plain_walk(client, commit, prefix, delimiter, start_after, want), encoded
        )
    return _merge(streams, max_keys)


async def _both(
    a: Coroutine[Any, Any, list[Entry]], b: Coroutine[Any, Any, list[Entry]]
) -> list[list[Entry]]:
    """Run two streams at once (over gRPC their requests overlap)."""
    da, db = ensureDeferred(a), ensureDeferred(b)
    try:
        first = await da
    except BaseException:
        db.addErrback(lambda _: None)
        raise
    return [first, await db]


def _merge(streams: list[list[Entry]], max_keys: int) -> RawPage:
    """The first ``max_keys`` entries of the sorted union (a common prefix may be in both)."""
    filled = [entries for entries in streams if entries]
    if len(filled) <= 1:
        ordered = filled[0] if filled else []  # each stream is in order already
    else:
        union: dict[str, Entry] = {}
        for entries in filled:
            for entry in entries:
                union.setdefault(entry[0], entry)
        # str order is code point order, which is UTF-8 byte order: S3's.
        ordered = sorted(union.values(), key=lambda e: e[0])
    page = ordered[:max_keys]
    return RawPage(
        files=[(name, info) for name, info in page if info is not None],
        common_prefixes=[name for name, info in page if info is None],
        is_truncated=len(ordered) > max_keys,
        next_marker=page[-1][0] if page else None,
    )


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


class _Folders:
    """Puts folder keys (``/d/.s3folder``) where S3 sorts them: first in ``d/``.

    *settled* directories are those whose folder key has been placed: looked
    up (then its marker file, when the walk reaches it, is skipped), or
    passed (a name above ``.s3folder`` was met, so the walk went by it).
    """

    def __init__(
        self, client: PfsClient, commit: pfs.Commit, root: str, prefix: str, start_after: str
    ) -> None:
        self._client = client
        self._commit = commit
        self._root = root
        self._prefix = prefix
        self._after = start_after
        self._settled: set[str] = set()
        self._looked_up: set[str] = set()

    def to_look_up(self, path: str) -> list[str]:
        """The directories whose folder key must be looked up before the entry at ``path``.

        Settles every directory from the root down to the entry's parent.
        """
        parent = path[: path.rstrip("/").rfind("/") + 1]
        if parent in self._settled:
            return []  # so are all above it: they were settled on the way down
        wanted: list[str] = []
        directory = self._root
        # Each directory from the root down, with the name the path has in it.
        for name in path[len(self._root) :].rstrip("/").split("/"):
            if directory != "/" and directory not in self._settled:
                self._settled.add(directory)
                key = directory[1:]
                if name < FOLDER_MARKER and key.startswith(self._prefix) and key > self._after:
                    wanted.append(directory)
            directory += name + "/"
        return wanted

    async def look_up(self, directories: list[str]) -> list[Entry]:
        """The folder keys of ``directories`` that exist, as entries (outermost first)."""
        found: list[Entry] = []
        for directory in directories:
            self._looked_up.add(directory)
            info = await self._inspect(directory + FOLDER_MARKER)
            if info is not None:
                found.append((directory[1:], info))
        return found

    def placed(self, path: str) -> bool:
        """Whether ``path`` is a marker file whose folder key was already placed."""
        directory, _, name = path.rpartition("/")
        return name == FOLDER_MARKER and directory + "/" in self._looked_up

    async def _inspect(self, path: str) -> pfs.FileInfo | None:
        try:
            info = await self._client.inspect_file(refs.file(self._commit, path))
        except (pfs_errors.FileNotFound, pfs_errors.NotARegularFile):
            return None
        return info if info.file_type != pfs.DIR else None


async def _plain_by_directory(
    client: PfsClient, commit: pfs.Commit, prefix: str, start_after: str, want: int
) -> list[Entry]:
    directory = _dir_of(prefix)
    marker = _max_marker(below(prefix), _directory_marker(directory, start_after))
    folders = _Folders(client, commit, directory, prefix, start_after)
    page = _Page(prefix, "", start_after, want)
    while True:
        number = min(want - len(page.out) + 1, MAX_BATCH)
        batch = await _fetch(client.list_files, refs.file(commit, directory), marker, number)
        for info in batch:
            path = info.file.path
            marker = path
            is_dir = info.file_type == pfs.DIR
            if path.rstrip("/") + "/" == ENCODED_DIR:
                continue
            lookups = folders.to_look_up(path)
            entries = await folders.look_up(lookups) if lookups else []
            if is_dir:
                entries.append((path[1:].rstrip("/") + "/", None))
            elif not folders.placed(path):
                key = path_to_key(path)
                if key is not None:
                    entries.append((key, info))
            for key, file in entries:
                page.offer(key, file)
                if page.done:
                    return page.out
        if len(batch) < number:
            return page.out


def _directory_marker(directory: str, start_after: str) -> str | None:
    """The ListFile marker for ``start_after`` among the children of ``directory``.

    A ``start_after`` below a subdirectory (or equal to the common prefix the
    last page ended on) passes that whole subdirectory; the directory's own
    folder key starts the listing from the top (its early children follow it).
    """
    if not start_after:
        return None
    path = "/" + start_after
    if path == directory:
        return None
    if path.startswith(directory):
        rest = path[len(directory) :]
        cut = rest.find("/")
        if cut >= 0:
            # Inside (or exactly) the group ``directory + rest[:cut+1]``.
            return directory + rest[: cut + 1]
    return path


async def _plain_walk(
    client: PfsClient,
    commit: pfs.Commit,
    prefix: str,
    delimiter: str,
    start_after: str,
    want: int,
) -> list[Entry]:
    directory = _dir_of(prefix)
    marker = _max_marker(below(prefix), "/" + start_after if start_after else None)
    folders = _Folders(client, commit, directory, prefix, start_after)
    page = _Page(prefix, delimiter, start_after, want)
    batch_size = MAX_BATCH if not delimiter else 64
    while True:
        number = min(want - len(page.out) + 1, batch_size)
        batch = await _fetch(client.walk_files, refs.file(commit, directory), marker, number)
        jumped = False
        for info in batch:
            path = info.file.path
            marker = path
            if info.file_type == pfs.DIR:
                if path.rstrip("/") + "/" == ENCODED_DIR:
                    marker = ENCODED_DIR + TOP * 4
                    jumped = True
                    break
                continue
            lookups = folders.to_look_up(path)
            entries = await folders.look_up(lookups) if lookups else []
            if not folders.placed(path):
                key = path_to_key(path)
                if key is not None:
                    entries.append((key, info))
            for key, file in entries:
                group = page.offer(key, file)
                if page.done:
                    return page.out
                if group is not None:
                    # Pass the rest of the group.
                    marker = max(path, "/" + group + TOP * 4)
                    jumped = True
                    break
            if jumped:
                break
        if jumped:
            batch_size = 64
            continue
        if len(batch) < number:
            return page.out
        if delimiter:
            batch_size = min(batch_size * 2, MAX_BATCH)


async def _encoded(
    client: PfsClient,
    commit: pfs.Commit,
    prefix: str,
    delimiter: str,
    start_after: str,
    want: int,
    keys: KeyPaths | None,
) -> list[Entry]:
    """Entries from the encoded directory, whose hex names sort as their keys."""
    if keys is not None and keys.has_no_encoded_keys(commit.id):
        return []
    marker = _max_marker(
        _below_hex(hex_prefix(prefix)),
        ENCODED_DIR + hex_prefix(start_after) if start_after else None,
    )
    page = _Page(prefix, delimiter, start_after, want)
    batch_size = MAX_BATCH if not delimiter else 64
    while True:
        number = min(want - len(page.out) + 1, batch_size)
        try:
            batch = await client.list_files(
                refs.file(commit, ENCODED_DIR), after=marker, number=number
            )
        except (pfs_errors.FileNotFound, pfs_errors.NotARegularFile):
            if keys is not None and commit.id:
                keys.saw_no_encoded_keys(commit.id)
            return page.out
        jumped = False
        for info in batch:
            path = info.file.path
            marker = path
            key = path_to_key(path) if info.file_type != pfs.DIR else None
            if key is None:
                continue
            group = page.offer(key, info)
            if page.done:
                return page.out
            if group is not None:
                marker = ENCODED_DIR + hex_prefix(group) + ABOVE_HEX
                jumped = True
                break
        if jumped:
            batch_size = 64
            continue
        if len(batch) < number:
            return page.out
        if delimiter:
            batch_size = min(batch_size * 2, MAX_BATCH)
