"""How a request names a commit: pachd's rule, in one place.

pachd reads the repo of a ``Commit`` with ``Commit.AccessRepo()``: the
``repo`` field (3) if set, else ``branch.repo``. python-pachyderm 7.6 never
sets ``Commit.repo`` (it sends ``Commit{branch: {repo, name}, id}``), and
pachyderm-sdk 2.12 sets it only on commits built from a URI or returned by
the server, so every form must work:

* ``repo`` + ``id`` and ``branch`` + ``id``: that commit (the id may be a
  branch name or carry ``^``/``~N`` ancestry, as pachd's text form allows);
* ``branch`` alone, or ``repo`` + ``branch``: the branch's head.

Every request field that carries a commit (ModifyFile's set_commit and
CopyFile source, File.commit, ListCommit's from/to, CreateBranch's head,
StartCommit's parent, DiffFile's files, ...) goes through :func:`commit_ref`;
optional ones are first tested with :func:`names_commit`.
"""

from __future__ import annotations

from pachs3gw.pfsd import _errors
from pachs3gw.pfsd._records import DEFAULT_PROJECT, CommitRef
from pachs3gw.proto import pfs_v2_pb2 as pfs


def project_name(project: pfs.Project) -> str:
    """pachd's ``EnsureProject``: an unset project is "default"."""
    return project.name or DEFAULT_PROJECT


def commit_repo(commit: pfs.Commit) -> pfs.Repo:
    """``Commit.AccessRepo()``: ``repo`` if set, else ``branch.repo``."""
    return commit.repo if commit.repo.name else commit.branch.repo


def names_commit(commit: pfs.Commit) -> bool:
    """Whether an optional commit field names a commit (an ID or a branch)."""
    return bool(commit.id or commit.branch.name)


def commit_ref(commit: pfs.Commit) -> CommitRef:
    """The commit a request names, by pachd's rule (module docstring)."""
    repo = commit_repo(commit)
    if not repo.name:
        raise _errors.unknown(_errors.NO_REPO)
    return CommitRef(
        project=project_name(repo.project),
        repo=repo.name,
        branch=commit.branch.name,
        id=commit.id,
    )
