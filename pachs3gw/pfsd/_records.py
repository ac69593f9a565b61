"""What the store hands out and takes in: records, commit handles, edits, and name rules.

Plain values (``attrs``, frozen where they are shared between threads) so
that the servicer, the tree readers and the store's parts can exchange them
without importing one another.
"""

from __future__ import annotations

import re
from typing import Optional

import attrs

from pachs3gw.pfsd import _errors, _scan
from pachs3gw.pfsd._content import Content

DEFAULT_PROJECT = "default"
_NAME = re.compile(r"^[a-zA-Z0-9_-]+$")
#: A commit ID (anything else in ``Commit.id`` is a branch name, maybe with ancestry).
COMMIT_ID = re.compile(r"^[0-9a-f]{32}$")
#: A handle and its ``^``/``~N`` ancestry suffix.
ANCESTRY = re.compile(r"^(.*?)((?:[\^~][0-9]*)*)$")

#: pfs_v2 OriginKind numbers, as stored in ``commits.origin``.
ORIGIN_USER = 1
ORIGIN_AUTO = 2


def validate_name(name: str) -> None:
    if not _NAME.match(name):
        raise _errors.invalid_name(name)


def clean_path(path: str) -> str:
    """pachd's CleanPath: absolute, no '.', '..' or duplicate or trailing slashes."""
    if "\x00" in path or _scan.TOP in path:
        raise _errors.invalid_argument(f"path {path!r} contains an invalid character")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)


@attrs.frozen
class RepoRec:
    id: int
    project: str
    name: str
    type: str
    description: str
    created: float


@attrs.frozen
class CommitRec:
    seq: int
    id: str
    repo: RepoRec
    lineage: int
    depth: int
    parent: Optional[str]
    branch: Optional[str]
    origin: int
    description: str
    started: float
    finished: Optional[float]
    size: int
    error: str


@attrs.frozen
class BranchRec:
    repo: RepoRec
    name: str
    head: Optional[CommitRec]
    created: float
    provenance: list[tuple[str, str, str]]
    subvenance: list[tuple[str, str, str]]


@attrs.frozen
class CommitRef:
    """A commit as a client names it: a branch head, or an ID (maybe with ``^``/``~N``)."""

    project: str
    repo: str
    branch: str = ""
    id: str = ""


@attrs.frozen
class FileRec:
    """A file (``content`` set) or a directory (``path`` ends with '/')."""

    path: str
    content: Optional[Content]
    committed: Optional[float]

    @property
    def is_dir(self) -> bool:
        return self.content is None


@attrs.define
class Edit:
    """What one ModifyFile stream does to one path.

    The new file is the old one (unless ``reset``: DeleteFile or overwrite)
    followed by ``parts``. With ``reset`` and no parts the file is deleted.
    """

    reset: bool = False
    parts: list[Content] = attrs.Factory(list)
