"""gRPC statuses from PFS, as typed exceptions.

This is the one module that looks at status codes and message texts. pachd
keeps the code of the first error in a wrap chain that carries one and
otherwise answers UNKNOWN with the whole message, so: match on the code
first, then on a substring (PFS_PROTOCOL.md, "Errors").
"""

from __future__ import annotations

import re

import grpc


class PfsError(Exception):
    """A failed PFS call; ``code`` is the gRPC status, ``details`` its text."""

    def __init__(self, details: str = "", code: grpc.StatusCode | None = None) -> None:
        super().__init__(details)
        self.details = details
        self.code = code


class NotFound(PfsError):
    """Something named in the request does not exist."""


class ProjectNotFound(NotFound):
    pass


class RepoNotFound(NotFound):
    pass


class BranchNotFound(NotFound):
    pass


class CommitNotFound(NotFound):
    pass


class FileNotFound(NotFound):
    pass


class AlreadyExists(PfsError):
    pass


class OutputBranch(PfsError):
    """Writes to a branch with provenance are refused."""


class CommitFinished(PfsError):
    """A write addressed a commit that is already finished."""


class ParentNotFinished(PfsError):
    """StartCommit while the branch head is still open: one open commit per branch."""


class InvalidName(PfsError):
    """A repo, branch or path name pachd will not accept."""


class NotARegularFile(PfsError):
    """GetFile on a directory, or on a pattern matching several files."""


class Unavailable(PfsError):
    """The backend cannot be reached (or a commit is still finishing)."""


class Unauthenticated(PfsError):
    """No token, or a token the backend does not know."""


class PermissionDenied(PfsError):
    pass


class AuthNotActivated(PfsError):
    """WhoAmI on a backend without auth: every caller is allowed."""


class Cancelled(PfsError):
    pass


class StorageFull(PfsError):
    """The backend's disk (or quota) is full: writes fail until space is freed; reads work."""


#: Where a "… not found" text names what is missing: at its start or after a
#: wrap prefix ("error getting file: file /a not found in repo …").
_SUBJECT = re.compile(r"(?:^|: )(file /|commit |branch |repo |project )")
_KINDS: dict[str, type[NotFound]] = {
    "file /": FileNotFound,
    "commit ": CommitNotFound,
    "branch ": BranchNotFound,
    "repo ": RepoNotFound,
    "project ": ProjectNotFound,
}


def _classify_not_found(text: str) -> type[NotFound]:
    """The kind of thing a NOT_FOUND text is about, by its subject, not by any word in it.

    A repo called ``branch-x`` or a project called ``commit`` must not change
    the answer, so only a segment's first word counts. A file path in a
    subject wins (``commit …@id: file /a not found`` is about the file);
    otherwise the innermost (last) subject. Unknown shapes fall back to the
    words they contain.
    """
    lowered = text.lower()
    end = lowered.rfind(" not found")
    head = lowered if end < 0 else lowered[:end]
    subjects = [m.group(1) for m in _SUBJECT.finditer(head)]
    if "file /" in subjects:
        return FileNotFound
    if subjects:
        return _KINDS[subjects[-1]]
    for word, kind in (
        ("commit", CommitNotFound),
        ("branch", BranchNotFound),
        ("repo", RepoNotFound),
        ("project", ProjectNotFound),
    ):
        if word in head:
            return kind
    return NotFound


def from_rpc_error(error: grpc.RpcError) -> PfsError:
    """Translate a failed call into the most specific :class:`PfsError`."""
    code: grpc.StatusCode | None = getattr(error, "code", lambda: None)()
    text: str = getattr(error, "details", lambda: "")() or str(error)
    kind: type[PfsError] = PfsError
    if "no space left on device" in text.lower() or "disk quota exceeded" in text.lower():
        # The embedded server says RESOURCE_EXHAUSTED "storage full: no space
        # left on device (...)"; pachd passes the OS error's text on.
        kind = StorageFull
    elif code == grpc.StatusCode.NOT_FOUND:
        kind = _classify_not_found(text)
    elif code == grpc.StatusCode.ALREADY_EXISTS:
        kind = AlreadyExists
    elif code == grpc.StatusCode.UNAVAILABLE:
        kind = Unavailable
    elif code == grpc.StatusCode.UNAUTHENTICATED:
        kind = Unauthenticated
    elif code == grpc.StatusCode.PERMISSION_DENIED:
        kind = PermissionDenied
    elif code == grpc.StatusCode.CANCELLED:
        kind = Cancelled
    elif code == grpc.StatusCode.DEADLINE_EXCEEDED:
        kind = Unavailable
    elif code == grpc.StatusCode.UNIMPLEMENTED and "auth service is not activated" in text:
        kind = AuthNotActivated
    elif "cannot start a commit on an output branch" in text:
        kind = OutputBranch
    elif "has already finished" in text:
        kind = CommitFinished
    elif "has not been finished" in text:
        # pachd's linkParent: "parent commit <commit> has not been finished".
        kind = ParentNotFinished
    elif "already exists" in text:
        kind = AlreadyExists
    elif "not found" in text:
        kind = _classify_not_found(text)
    elif (
        "Use GetFileTAR instead" in text
        or "matched multiple files" in text
        or "but it's not a directory" in text
    ):
        kind = NotARegularFile
    elif (
        code == grpc.StatusCode.INVALID_ARGUMENT
        or "only printable ASCII characters allowed" in text
        or "not allowed in path" in text
        or ") invalid: only alphanumeric characters" in text
        or "invalid name" in text.lower()
        or "valid name" in text.lower()
    ):
        kind = InvalidName
    return kind(text, code)
