"""Every error text the embedded server (and pachd) sends, through ``from_rpc_error``.

The gateway decides NoSuchBucket vs NoSuchKey vs AccessDenied by the typed
:class:`~pachs3gw.pfs.errors.PfsError` subclass alone, so each pfsd error
constructor (``pachs3gw/pfsd/_errors.py``), each ad-hoc text pfsd raises, and
pachd's own variants (``/work/shared/PFS_PROTOCOL.md``, "Errors": pfsdb
forms, wrap prefixes) must land on the right class. Names that happen to be
words (a repo called ``branch-x``, a project called ``commit``) must not
change the answer.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Callable

import grpc
import pytest

from pachs3gw.pfs import errors as pfs
from pachs3gw.pfs.errors import from_rpc_error
from pachs3gw.pfsd import _errors as pfsd
from pachs3gw.proto import conventions

C = grpc.StatusCode
ROOT = Path(__file__).resolve().parents[2]
ID = "0123456789abcdef0123456789abcdef"


class FakeRpcError(grpc.RpcError):
    """What grpc raises for a failed call: ``code()`` and ``details()``."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self._code = code
        self._details = details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


def _through(error: pfsd.PfsError) -> pfs.PfsError:
    return from_rpc_error(FakeRpcError(error.code, error.message))


#: constructor name → (calls of it, the class each must map to).
CONSTRUCTORS: dict[str, tuple[list[Callable[[], pfsd.PfsError]], type[pfs.PfsError]]] = {
    "repo_not_found": (
        [
            lambda: pfsd.repo_not_found("default", "images"),
            lambda: pfsd.repo_not_found("default", "branch-x"),
            lambda: pfsd.repo_not_found("commit", "file"),
            lambda: pfsd.repo_not_found("p", "project"),
            # What pfsd answers to our client's abort request (a failed upload).
            lambda: pfsd.repo_not_found("default", conventions.ABORT_REPO),
        ],
        pfs.RepoNotFound,
    ),
    "repo_exists": ([lambda: pfsd.repo_exists("default", "images")], pfs.AlreadyExists),
    "branch_not_found": (
        [
            lambda: pfsd.branch_not_found("default", "images", "master"),
            lambda: pfsd.branch_not_found("default", "repo", "commit"),
            lambda: pfsd.branch_not_found("project", "file", "x"),
        ],
        pfs.BranchNotFound,
    ),
    "branch_exists": ([lambda: pfsd.branch_exists("default", "r", "master")], pfs.AlreadyExists),
    "commit_not_found": (
        [
            lambda: pfsd.commit_not_found("default", "images", ID),
            lambda: pfsd.commit_not_found("default", "branch", "master^3"),
            lambda: pfsd.commit_not_found("project", "repo", ID),
        ],
        pfs.CommitNotFound,
    ),
    "commit_finished": (
        [lambda: pfsd.commit_finished("default", "images", ID)],
        pfs.CommitFinished,
    ),
    "parent_not_finished": (
        [lambda: pfsd.parent_not_finished("default", "images", ID)],
        pfs.ParentNotFinished,
    ),
    "output_branch": (
        [lambda: pfsd.output_branch("default", "edges", "master")],
        pfs.OutputBranch,
    ),
    "file_not_found": (
        [
            lambda: pfsd.file_not_found("/a", "default", "images", ID),
            lambda: pfsd.file_not_found("/dir/commit not found.txt", "default", "repo", ID),
            lambda: pfsd.file_not_found("/x: y", "project", "branch", ID),
        ],
        pfs.FileNotFound,
    ),
    "project_not_found": (
        [lambda: pfsd.project_not_found("p"), lambda: pfsd.project_not_found("commit")],
        pfs.ProjectNotFound,
    ),
    "project_exists": ([lambda: pfsd.project_exists("p")], pfs.AlreadyExists),
    "invalid_name": (
        [lambda: pfsd.invalid_name("bad name"), lambda: pfsd.invalid_name("repo")],
        pfs.InvalidName,
    ),
    "storage_full": (
        [
            lambda: pfsd.storage_full("writing metadata: database or disk is full"),
            lambda: pfsd.storage_full("writing a chunk: No space left on device"),
        ],
        pfs.StorageFull,
    ),
    "invalid_argument": (
        [
            lambda: pfsd.invalid_argument("path '/a\\x00' contains an invalid character"),
            lambda: pfsd.invalid_argument("invalid path '/d': cannot write to a directory"),
            lambda: pfsd.invalid_argument("empty ModifyFile message"),
        ],
        pfs.InvalidName,
    ),
    "unknown": (
        [
            # Texts pfsd raises as UNKNOWN that name nothing missing: no subclass.
            lambda: pfsd.unknown(pfsd.NO_REPO),
            lambda: pfsd.unknown(pfsd.FIRST_MESSAGE_NOT_COMMIT),
            lambda: pfsd.unknown("cannot pick commit with no id or branch"),
            lambda: pfsd.unknown("cannot delete project p: it still has 2 repo(s)"),
            lambda: pfsd.unknown("branch default/r@b cannot be in its own provenance"),
            lambda: pfsd.unknown("branch b and its head commit must be in the same repo"),
            lambda: pfsd.unknown(
                "cannot squash a commit that has no children as that would cause data loss,"
                f" use the drop operation instead: default/r@{ID}"
            ),
            lambda: pfsd.unknown(f"cannot drop a commit that has children: default/r@{ID}"),
            lambda: pfsd.unknown("invalid glob pattern '[': unterminated"),
        ],
        pfs.PfsError,
    ),
}

#: The texts pfsd sends without a constructor of its own.
OTHERS: list[tuple[grpc.StatusCode, str, type[pfs.PfsError]]] = [
    (C.UNKNOWN, pfsd.NOT_A_REGULAR_FILE, pfs.NotARegularFile),
    (C.UNIMPLEMENTED, pfsd.AUTH_NOT_ACTIVATED, pfs.AuthNotActivated),
    (C.UNAUTHENTICATED, pfsd.NO_TOKEN, pfs.Unauthenticated),
    (C.UNAUTHENTICATED, pfsd.BAD_TOKEN, pfs.Unauthenticated),
    (C.CANCELLED, "ModifyFile cancelled", pfs.Cancelled),
    (C.UNIMPLEMENTED, "GetFile to a URL is not supported", pfs.PfsError),
    (C.UNIMPLEMENTED, "AddFile from a URL is not supported", pfs.PfsError),
    (C.NOT_FOUND, "no commits found for commitset " + ID, pfs.CommitNotFound),
    (C.NOT_FOUND, "unknown service", pfs.NotFound),  # grpc.health.v1 Check of another service
    # Anything that is not a PfsError, as the servicer reports it: no subclass.
    (C.UNKNOWN, "OperationalError: database is locked", pfs.PfsError),
]

#: pachd's variants of the same conditions (PFS_PROTOCOL.md, "Errors").
PACHD: list[tuple[grpc.StatusCode, str, type[pfs.PfsError]]] = [
    (C.NOT_FOUND, "repo (id=0, project=default, name=foo, type=user) not found", pfs.RepoNotFound),
    (
        C.UNKNOWN,
        "inspect repo: get repo info: repo (id=0, project=default, name=foo, type=user) not found",
        pfs.RepoNotFound,
    ),
    (C.NOT_FOUND, "branch (id=3, branch=default/foo@master) not found", pfs.BranchNotFound),
    (C.NOT_FOUND, f"commit (int_id=7, commit_id={ID}) not found", pfs.CommitNotFound),
    (C.UNKNOWN, f"error getting commit: commit default/foo@{ID} not found", pfs.CommitNotFound),
    (
        C.UNKNOWN,
        f"error getting file: file /a not found in repo default/foo at commit {ID}",
        pfs.FileNotFound,
    ),
    (C.UNKNOWN, "opening file set: repo default/files not found", pfs.RepoNotFound),
    (C.UNKNOWN, "repo default/foo already exists", pfs.AlreadyExists),
    (C.UNKNOWN, 'branch "x" already exists in repo default/foo', pfs.AlreadyExists),
    (C.UNKNOWN, "cannot start a commit on an output branch: default/foo@master", pfs.OutputBranch),
    (C.UNKNOWN, f"commit default/foo@{ID} has already finished", pfs.CommitFinished),
    (C.UNKNOWN, f"parent commit default/foo@{ID} has not been finished", pfs.ParentNotFinished),
    (C.UNKNOWN, f"start commit: parent commit {ID} has not been finished", pfs.ParentNotFinished),
    (C.UNAVAILABLE, f"commit default/foo@{ID} not finished", pfs.Unavailable),
    (C.UNKNOWN, "matched multiple files. Use GetFileTAR instead", pfs.NotARegularFile),
    (C.UNKNOWN, "file /a/b: /a is a file but it's not a directory", pfs.NotARegularFile),
    (C.UNKNOWN, "name (a b) invalid: only alphanumeric characters, underscores, and dashes are allowed", pfs.InvalidName),
    (C.UNKNOWN, "only printable ASCII characters allowed", pfs.InvalidName),
    (C.UNKNOWN, "character '\\x00' not allowed in path", pfs.InvalidName),
    (C.PERMISSION_DENIED, "alice is not authorized to perform this operation - needs permissions [REPO_READ] on REPO default/foo", pfs.PermissionDenied),
    (C.DEADLINE_EXCEEDED, "Deadline Exceeded", pfs.Unavailable),
    (C.UNAVAILABLE, "failed to connect to all addresses", pfs.Unavailable),
]


def _sent_texts() -> list[str]:
    return [make().message for makes, _ in CONSTRUCTORS.values() for make in makes] + [
        text for _, text, _ in OTHERS
    ]


def test_the_table_sends_every_text_constant_of_pfsd_errors() -> None:
    constants = {
        name: value
        for name, value in vars(pfsd).items()
        if name.isupper() and isinstance(value, str)
    }
    assert constants  # NO_REPO, NOT_A_REGULAR_FILE, ...
    sent = _sent_texts()
    assert [name for name, text in constants.items() if not any(text in m for m in sent)] == []


def _literal_pieces(node: ast.expr) -> list[str] | None:
    """The literal text of a message argument (an f-string's literal parts), or None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        return [v.value for v in node.values if isinstance(v, ast.Constant) and v.value.strip(": ")]
    return None


def _raised_messages() -> list[tuple[str, int, list[str]]]:
    """Every message pfsd's code raises or aborts with as a literal: (file, line, its literal parts)."""
    found = []
    for path in sorted((ROOT / "pachs3gw" / "pfsd").glob("*.py")):
        if path.name == "_errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("unknown", "invalid_argument", "storage_full") and node.args:
                message = node.args[0]
            elif name in ("PfsError", "abort") and len(node.args) >= 2:
                message = node.args[1]
            else:
                continue
            pieces = _literal_pieces(message)
            if pieces:
                found.append((path.name, node.lineno, pieces))
    return found


def test_the_table_sends_every_message_pfsd_raises() -> None:
    """An ad-hoc text in pfsd (``_errors.unknown("...")``, ``PfsError(code, f"...")``,
    ``context.abort(code, "...")``) must have a row, so that its class is pinned."""
    raised = _raised_messages()
    assert len(raised) > 10
    sent = _sent_texts()
    missing = [
        f"{name}:{line}: {pieces}"
        for name, line, pieces in raised
        if not any(all(piece in text for piece in pieces) for text in sent)
    ]
    assert missing == []


def test_the_table_names_every_pfsd_error_constructor() -> None:
    constructors = {
        name
        for name, fn in inspect.getmembers(pfsd, inspect.isfunction)
        if fn.__module__ == pfsd.__name__ and not name.startswith("_")
    } - {"is_storage_full"}  # a predicate, not an error constructor
    assert constructors == set(CONSTRUCTORS)


@pytest.mark.parametrize(
    "make,kind",
    [
        pytest.param(make, kind, id=f"{name}-{i}")
        for name, (makes, kind) in CONSTRUCTORS.items()
        for i, make in enumerate(makes)
    ],
)
def test_pfsd_constructor_maps_to_its_class(
    make: Callable[[], pfsd.PfsError], kind: type[pfs.PfsError]
) -> None:
    error = make()
    translated = _through(error)
    assert type(translated) is kind, error.message
    assert (translated.code, translated.details) == (error.code, error.message)


@pytest.mark.parametrize(
    "code,text,kind",
    [pytest.param(c, t, k, id=t[:40]) for c, t, k in OTHERS + PACHD],
)
def test_text_maps_to_its_class(
    code: grpc.StatusCode, text: str, kind: type[pfs.PfsError]
) -> None:
    translated = from_rpc_error(FakeRpcError(code, text))
    assert type(translated) is kind
    assert (translated.code, translated.details) == (code, text)


def test_an_error_without_code_or_details_still_translates() -> None:
    translated = from_rpc_error(grpc.RpcError("channel closed"))
    assert type(translated) is pfs.PfsError
    assert translated.details == "channel closed" and translated.code is None
