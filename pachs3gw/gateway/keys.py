"""Object keys as PFS paths.

A key is an absolute path: ``a/b.csv`` is ``/a/b.csv``. PFS has directories
only implicitly (a directory exists while a file is below it), so a key
ending in ``/`` -- the "folder" objects that consoles, s3fs and Cyberduck
create -- is stored as a file with a reserved name inside that directory:
``a/b/`` is ``/a/b/.s3folder``. The name is reserved: a key whose last part is
``.s3folder`` is refused, so the mapping stays one to one. (It makes the
folder key sort after siblings whose names start with a character below
``.``, e.g. ``a/b/-x`` lists before ``a/b/``; listings stay consistent page to
page because markers go through the same mapping.)

Keys PFS would silently rewrite (empty path parts, ``.`` and ``..``) are
refused with InvalidArgument rather than aliased to another key.
"""

from __future__ import annotations

from pachs3gw.proto.conventions import END_OF_STREAM_PATH
from pachs3gw.s3 import errors
from pachs3gw.s3.limits import MAX_KEY_BYTES

FOLDER_MARKER = ".s3folder"
#: S3's limit, in UTF-8 bytes.


def key_to_path(key: str) -> str:
    """The PFS path of a key (for writes and reads alike)."""
    check_key(key)
    if key.endswith("/"):
        return "/" + key + FOLDER_MARKER
    return "/" + key


def path_to_key(path: str) -> str:
    """The key of a PFS file path (from ListFile/WalkFile/InspectFile)."""
    key = path[1:] if path.startswith("/") else path
    if key == FOLDER_MARKER or key.endswith("/" + FOLDER_MARKER):
        return key[: -len(FOLDER_MARKER)]
    return key


def marker_to_path(key: str) -> str:
    """A listing marker (any string, not necessarily a valid key) as a PFS path."""
    if key.endswith("/"):
        return "/" + key + FOLDER_MARKER
    return "/" + key


def check_key(key: str) -> None:
    if not key:
        raise errors.InvalidArgument("Object keys must not be empty.")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise errors.KeyTooLongError(resource=key)
    if "/" + key == END_OF_STREAM_PATH:
        raise errors.InvalidArgument(
            f"Object key {key!r} is reserved by the gateway.", resource=key
        )
    parts = key.split("/")
    if key.endswith("/"):
        parts = parts[:-1]
    for part in parts:
        if part in ("", ".", ".."):
            raise errors.InvalidArgument(
                f"Object key {key!r} cannot be stored in PFS: empty, '.' and '..' "
                "path segments are not allowed.",
                resource=key,
            )
        if part == FOLDER_MARKER:
            raise errors.InvalidArgument(
                f"Object key {key!r} uses the name {FOLDER_MARKER!r}, which the gateway "
                "reserves for folder keys (keys ending in '/').",
                resource=key,
            )
        if "\x00" in part:
            raise errors.InvalidArgument("Object keys must not contain NUL.", resource=key)
