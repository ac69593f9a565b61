"""Addresses of PFS things, as the protocol wants them spelled.

pachd rejects a Commit without ``repo`` (field 3) even when ``branch.repo`` is
set, so every commit handle built here sets both, as the Go client does.
"""

from __future__ import annotations

from pachs3gw.proto import pfs_v2_pb2 as pfs

DEFAULT_PROJECT = "default"


def repo(name: str, project: str = DEFAULT_PROJECT) -> pfs.Repo:
    return pfs.Repo(name=name, type="user", project=pfs.Project(name=project))


def branch(repo_name: str, branch_name: str, project: str = DEFAULT_PROJECT) -> pfs.Branch:
    return pfs.Branch(repo=repo(repo_name, project), name=branch_name)


def branch_head(repo_name: str, branch_name: str, project: str = DEFAULT_PROJECT) -> pfs.Commit:
    """The head of a branch: writes land there (auto-commit), reads see it."""
    the_repo = repo(repo_name, project)
    return pfs.Commit(repo=the_repo, branch=pfs.Branch(repo=the_repo, name=branch_name), id="")


def commit(
    repo_name: str, commit_id: str, project: str = DEFAULT_PROJECT, branch_name: str = ""
) -> pfs.Commit:
    """A fixed commit (``branch_name`` is informative only)."""
    the_repo = repo(repo_name, project)
    if branch_name:
        return pfs.Commit(
            repo=the_repo, branch=pfs.Branch(repo=the_repo, name=branch_name), id=commit_id
        )
    return pfs.Commit(repo=the_repo, id=commit_id)


def file(at: pfs.Commit, path: str) -> pfs.File:
    return pfs.File(commit=at, path=absolute(path))


def absolute(path: str) -> str:
    return path if path.startswith("/") else "/" + path
