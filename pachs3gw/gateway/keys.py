"""Object keys as PFS paths, and back.

S3 takes any UTF-8 key of 1 to 1024 bytes; PFS paths are narrower. A PFS
server rewrites paths (pachd's ``CleanPath`` and the embedded store's
``clean_path`` drop empty, ``.`` and ``..`` segments and leading or trailing
slashes: ``a//b`` would become ``/a/b``), pachd also refuses every character
outside printable ASCII and the glob characters ``*?[]{}!()@+^``
(``ValidateFilename``), and the embedded store refuses NUL and U+10FFFF. So a
key lives in one of two places:

- **Plain**: ``a/b.csv`` is ``/a/b.csv``, what Pachyderm's own tools show. A
  key ending in ``/`` -- the "folder" objects consoles, s3fs and Cyberduck
  create -- is a file with a reserved name inside that directory: ``a/b/`` is
  ``/a/b/.s3folder``. Every key whose plain path the server stores unchanged
  stays there (existing data keeps its paths).
- **Encoded**: every other key is one flat file in the directory
  ``/.pachs3gw-keys/``, named by the lowercase hex of the key's UTF-8 bytes
  (``../x`` is ``/.pachs3gw-keys/2e2e2f78``). Hex of bytes sorts as the bytes
  do and hex of a prefix is a prefix of the hex, so that directory lists in
  S3's order and a key prefix is a name prefix (``gateway/listing.py`` merges
  the two places). The names that would make the mapping ambiguous are
  themselves encoded: a key with a ``.s3folder`` segment, and one whose first
  segment is ``.pachs3gw-keys`` or the client's end-of-stream name.

Which keys are plain is :func:`placement`: ``PLAIN`` on every server,
``ENCODED`` on every server, or ``PLAIN_IF_ALLOWED`` -- valid and canonical
but with characters pachd refuses (``café``, ``photo (1).jpg``, control
characters). Those are plain where the server takes them (the embedded store:
data written before stays where it is) and encoded on pachd.
:class:`KeyPaths` learns which once per process, from the server itself: one
write that can never commit (see :meth:`KeyPaths.write_path`).

Reading back (:func:`path_to_key`) needs no knowledge of the server: a path
under the encoded directory is hex, any other is plain; a path the mapping
never makes (e.g. ``/a/.s3folder/b`` written by another tool) is no key.
"""

from __future__ import annotations

import enum
import re
import string

from pachs3gw.pfs import client as pfs_client
from pachs3gw.pfs import errors as pfs_errors
from pachs3gw.pfs.client import PfsClient
from pachs3gw.proto import pfs_v2_pb2 as pfs
from pachs3gw.proto.conventions import END_OF_STREAM_PATH, abort_request
from pachs3gw.s3 import errors
from pachs3gw.s3.limits import MAX_KEY_BYTES

FOLDER_MARKER = ".s3folder"
#: The directory of encoded keys (a top-level name no plain key can have).
ENCODED_DIR_NAME = ".pachs3gw-keys"
ENCODED_DIR = "/" + ENCODED_DIR_NAME + "/"
#: What pachd refuses besides non-printable-ASCII (its ``globRegex``).
_PACHD_GLOB = re.compile(r"[*?\[\]{}!()@+^]")
#: Besides NUL, what the embedded store refuses in any path (its scan bound).
TOP = "\U0010ffff"
#: First segments that belong to the gateway.
_RESERVED_TOP = frozenset({ENCODED_DIR_NAME, END_OF_STREAM_PATH.lstrip("/")})
_MARKER_SEGMENT = "/" + FOLDER_MARKER + "/"
_MARKER_SUFFIX = "/" + FOLDER_MARKER
_HEX = frozenset(string.hexdigits.lower())
#: Commits a :class:`KeyPaths` remembers as holding no encoded key.
MAX_REMEMBERED_COMMITS = 100_000
#: The path :meth:`KeyPaths.learn` tries: refused by pachd on two counts.
PROBE_PATH = "/.pachs3gw-probe-\u00e9(1)"


class Placement(enum.Enum):
    """Where a key lives (see the module doc)."""

    PLAIN = "plain"
    PLAIN_IF_ALLOWED = "plain if the server allows its characters"
    ENCODED = "encoded"


def check_key(key: str) -> None:
    """The limits S3 itself sets: 1 to 1024 bytes of UTF-8."""
    if not key:
        raise errors.InvalidArgument("Object keys must not be empty.")
    # At most 4 bytes a character: short keys need no encoding to be measured.
    if len(key) > MAX_KEY_BYTES // 4 and len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise errors.KeyTooLongError(resource=key)


def _encoded_everywhere(key: str) -> bool:
    """Whether no PFS server keeps ``key``'s plain path as it is (or it would be ambiguous)."""
    body = key[:-1] if key.endswith("/") else key
    wrapped = "/" + body + "/"
    return (
        not body
        or "//" in wrapped
        or "/./" in wrapped
        or "/../" in wrapped
        or _MARKER_SEGMENT in wrapped
        or body.partition("/")[0] in _RESERVED_TOP
        or "\x00" in key
        or TOP in key
    )


def placement(key: str) -> Placement:
    """Where ``key`` lives, whatever the server (``PLAIN_IF_ALLOWED``: it depends)."""
    check_key(key)
    if _encoded_everywhere(key):
        return Placement.ENCODED
    if key.isascii() and key.isprintable() and _PACHD_GLOB.search(key) is None:
        return Placement.PLAIN
    return Placement.PLAIN_IF_ALLOWED


def plain_path(key: str) -> str:
    """The plain path of a key (valid only where :func:`placement` allows)."""
    if key.endswith("/"):
        return "/" + key + FOLDER_MARKER
    return "/" + key


def encoded_path(key: str) -> str:
    return ENCODED_DIR + key.encode("utf-8").hex()


def hex_prefix(prefix: str) -> str:
    """The encoded name prefix of every encoded key starting with ``prefix``."""
    return prefix.encode("utf-8").hex()


def path_to_key(path: str) -> str | None:
    """The key stored at a PFS file path (from ListFile/WalkFile/DiffFile), or None."""
    if path.startswith(ENCODED_DIR):
        name = path[len(ENCODED_DIR) :]
        if not name or len(name) % 2 or not _HEX.issuperset(name):
            return None
        try:
            key = bytes.fromhex(name).decode("utf-8")
        except UnicodeDecodeError:
            return None
        try:
            if placement(key) is Placement.PLAIN:
                return None  # we would never have encoded it
        except errors.S3Error:
            return None  # too long
        return key
    if not path.startswith("/"):
        path = "/" + path
    if (
        len(path) <= MAX_KEY_BYTES // 4
        and "/." not in path
        and "//" not in path
        and not path.endswith("/")
        and "\x00" not in path
        and TOP not in path
    ):
        return path[1:]  # the common case: no segment could be special
    # Paths from PFS are clean (no empty, "." or ".." segments, no trailing
    # "/"), so this undoes plain_path; what is left to rule out is a path
    # plain_path never makes (e.g. "/a/.s3folder/b", "/.pachs3gw-keys").
    if path.endswith(_MARKER_SUFFIX):
        key = path[1 : -len(FOLDER_MARKER)]
    else:
        key = path[1:]
    if (
        not key
        or (len(key) > MAX_KEY_BYTES // 4 and len(key.encode("utf-8")) > MAX_KEY_BYTES)
        or _encoded_everywhere(key)
        or path.endswith("/")
    ):
        return None
    return key


def could_be_plain_prefix(prefix: str) -> bool:
    """Whether some plain key may start with ``prefix`` (its whole segments are plain)."""
    if "\x00" in prefix or TOP in prefix:
        return False
    whole = prefix.split("/")[:-1]
    if whole and whole[0] in _RESERVED_TOP:
        return False
    return all(s not in ("", ".", "..", FOLDER_MARKER) for s in whole)


class KeyPaths:
    """Which PFS path holds a key on the server at hand.

    One per backend factory (shared by its backends, reactor thread only):
    ``allows_any_characters`` is whether the server stores paths with
    characters pachd refuses; None until a write of such a key finds out.
    """

    def __init__(self, allows_any_characters: bool | None = None) -> None:
        self.allows_any_characters = allows_any_characters
        #: Probes sent (for tests).
        self.probes = 0
        #: Commits known to hold no encoded key (commits never change), so
        #: their listings need not look; bounded, forgotten all at once.
        self._without_encoded: set[str] = set()

    def has_no_encoded_keys(self, commit_id: str) -> bool:
        return commit_id in self._without_encoded

    def saw_no_encoded_keys(self, commit_id: str) -> None:
        if len(self._without_encoded) >= MAX_REMEMBERED_COMMITS:
            self._without_encoded.clear()
        self._without_encoded.add(commit_id)

    def read_paths(self, key: str) -> tuple[str, ...]:
        """Where ``key`` may be, most likely first (two only while the server is unknown)."""
        where = placement(key)
        if where is Placement.PLAIN:
            return (plain_path(key),)
        if where is Placement.ENCODED or self.allows_any_characters is False:
            return (encoded_path(key),)
        if self.allows_any_characters:
            return (plain_path(key),)
        return (plain_path(key), encoded_path(key))

    def found(self, key: str, path: str) -> None:
        """A read found ``key`` at ``path``: a plain path pachd would refuse proves the
        server takes any characters."""
        if self.allows_any_characters is None and path == plain_path(key):
            if placement(key) is Placement.PLAIN_IF_ALLOWED:
                self.allows_any_characters = True

    async def write_path(self, client: PfsClient, head: pfs.Commit, key: str) -> str:
        """Where a write of ``key`` goes; may first ask the server (see :meth:`learn`)."""
        where = placement(key)
        if where is Placement.PLAIN:
            return plain_path(key)
        if where is Placement.PLAIN_IF_ALLOWED and self.allows_any_characters is None:
            await self.learn(client, head)
        if where is Placement.ENCODED or not self.allows_any_characters:
            return encoded_path(key)
        return plain_path(key)

    async def learn(self, client: PfsClient, head: pfs.Commit) -> None:
        """Find out whether the server takes any characters in a path.

        One ModifyFile to ``head`` (the branch about to be written) adding
        :data:`PROBE_PATH`, then a request every PFS server refuses (a
        CopyFile from a repo that never exists), so nothing is ever
        committed: pachd fails the stream at the path ("only printable ASCII
        characters allowed"), the embedded store at the CopyFile (NOT_FOUND).
        Any other failure (auth, the server gone) is raised: the write would
        have met it too.
        """
        self.probes += 1
        try:
            await client.modify_file(
                [pfs_client.set_commit(head), pfs_client.add_empty(PROBE_PATH), abort_request()]
            )
        except pfs_errors.InvalidName:
            self.allows_any_characters = False
            return
        except pfs_errors.RepoNotFound:
            self.allows_any_characters = True
            return
        raise pfs_errors.PfsError("a PFS server accepted a ModifyFile that cannot succeed")


__all__ = [
    "ENCODED_DIR",
    "FOLDER_MARKER",
    "KeyPaths",
    "MAX_KEY_BYTES",
    "Placement",
    "check_key",
    "could_be_plain_prefix",
    "encoded_path",
    "hex_prefix",
    "path_to_key",
    "placement",
    "plain_path",
]
