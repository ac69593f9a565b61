"""Errors the embedded server raises, with pachd's gRPC codes and texts.

The gateway (and any Pachyderm client) matches on the status code first and
then on a substring of pachd's legacy message formats, so every error here
is built by one function that spells the text exactly as pachd does.
"""

from __future__ import annotations

import errno
import sqlite3

import grpc


class PfsError(Exception):
    """A request failed: ``code`` and ``message`` go to the client verbatim."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def repo_not_found(project: str, repo: str) -> PfsError:
    return PfsError(grpc.StatusCode.NOT_FOUND, f"repo {project}/{repo} not found")


def repo_exists(project: str, repo: str) -> PfsError:
    return PfsError(grpc.StatusCode.ALREADY_EXISTS, f"repo {project}/{repo} already exists")


def branch_not_found(project: str, repo: str, branch: str) -> PfsError:
    return PfsError(
        grpc.StatusCode.NOT_FOUND, f'branch "{branch}" not found in repo {project}/{repo}'
    )


def branch_exists(project: str, repo: str, branch: str) -> PfsError:
    return PfsError(
        grpc.StatusCode.ALREADY_EXISTS,
        f'branch "{branch}" already exists in repo {project}/{repo}',
    )


def commit_not_found(project: str, repo: str, commit_id: str) -> PfsError:
    return PfsError(grpc.StatusCode.NOT_FOUND, f"commit {project}/{repo}@{commit_id} not found")


def commit_finished(project: str, repo: str, commit_id: str) -> PfsError:
    return PfsError(
        grpc.StatusCode.UNKNOWN, f"commit {project}/{repo}@{commit_id} has already finished"
    )


def parent_not_finished(project: str, repo: str, commit_id: str) -> PfsError:
    """StartCommit on a branch whose head (or on a parent that) is still open."""
    return PfsError(
        grpc.StatusCode.UNKNOWN,
        f"parent commit {project}/{repo}@{commit_id} has not been finished",
    )


def output_branch(project: str, repo: str, branch: str) -> PfsError:
    return PfsError(
        grpc.StatusCode.UNKNOWN,
        f"cannot start a commit on an output branch: {project}/{repo}@{branch}",
    )


def file_not_found(path: str, project: str, repo: str, commit_id: str) -> PfsError:
    return PfsError(
        grpc.StatusCode.NOT_FOUND,
        f"file {path} not found in repo {project}/{repo} at commit {commit_id}",
    )


def project_not_found(project: str) -> PfsError:
    return PfsError(grpc.StatusCode.NOT_FOUND, f'project "{project}" not found')


def project_exists(project: str) -> PfsError:
    return PfsError(grpc.StatusCode.ALREADY_EXISTS, f"project {project} already exists")


def invalid_name(name: str) -> PfsError:
    """ancestry.ValidateName's text (pachd wraps it; the code is UNKNOWN)."""
    return PfsError(
        grpc.StatusCode.UNKNOWN,
        f"name ({name}) invalid: only alphanumeric characters, underscores, and dashes"
        " are allowed",
    )


def unknown(message: str) -> PfsError:
    return PfsError(grpc.StatusCode.UNKNOWN, message)


def invalid_argument(message: str) -> PfsError:
    return PfsError(grpc.StatusCode.INVALID_ARGUMENT, message)


#: The text a full disk is reported with (with RESOURCE_EXHAUSTED); the
#: gateway's ``pfs/errors.py`` matches on it.
STORAGE_FULL = "storage full: no space left on device"


def storage_full(detail: str) -> PfsError:
    """The data directory's file system is full: writes fail until space is freed."""
    return PfsError(grpc.StatusCode.RESOURCE_EXHAUSTED, f"{STORAGE_FULL} ({detail})")


def is_storage_full(error: BaseException) -> bool:
    """Whether ``error`` is a full disk or quota: ENOSPC/EDQUOT, or SQLite's SQLITE_FULL."""
    if isinstance(error, OSError):
        return error.errno in (errno.ENOSPC, errno.EDQUOT)
    if isinstance(error, sqlite3.Error):
        # SQLITE_FULL is 13; "database or disk is full" is its text.
        return getattr(error, "sqlite_errorcode", None) == 13 or "disk is full" in str(error)
    return False


NOT_A_REGULAR_FILE = "cannot get directory or non-regular file. Use GetFileTAR instead"
FIRST_MESSAGE_NOT_COMMIT = "first message must be a commit"
NO_REPO = "cannot pick commit with no repo"
AUTH_NOT_ACTIVATED = "the auth service is not activated"
NO_TOKEN = "no authentication token (try logging in)"
BAD_TOKEN = "provided auth token is corrupted or has expired (try logging in again)"
