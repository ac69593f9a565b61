"""Protobuf messages from store records, spelled as pachd spells them.

Which fields a pachd reply carries (commit handles with both ``repo`` and
``branch``, timestamps, sizes, provenance) lives here, shared by every RPC
that returns repos, branches, commits or files.
"""

from __future__ import annotations

from typing import Any, Iterator, Optional, cast

from pachs3gw.pfsd._records import BranchRec, CommitRec, FileRec, RepoRec
from pachs3gw.pfsd._store import Store
from pachs3gw.proto import pfs_v2_pb2 as pfs



def repo_pb(repo: RepoRec) -> pfs.Repo:
    return pfs.Repo(name=repo.name, type=repo.type, project=pfs.Project(name=repo.project))


def commit_pb(commit: CommitRec) -> pfs.Commit:
    repo = repo_pb(commit.repo)
    if commit.branch:
        return pfs.Commit(repo=repo, id=commit.id, branch=pfs.Branch(repo=repo, name=commit.branch))
    return pfs.Commit(repo=repo, id=commit.id)


def parent_pb(commit: CommitRec) -> Optional[pfs.Commit]:
    if not commit.parent:
        return None
    return pfs.Commit(repo=repo_pb(commit.repo), id=commit.parent)


def ts(field: Any, seconds: Optional[float]) -> None:
    if seconds is not None:
        field.FromNanoseconds(int(seconds * 1e9))


def commit_info(store: Store, commit: CommitRec) -> pfs.CommitInfo:
    info = pfs.CommitInfo(
        commit=commit_pb(commit),
        # The store keeps the OriginKind number (protobuf takes the int as is).
        origin=pfs.CommitOrigin(kind=cast(pfs.OriginKind, commit.origin)),
        description=commit.description,
        error=commit.error,
        size_bytes_upper_bound=commit.size,
        details=pfs.CommitInfo.Details(size_bytes=commit.size),
    )
    parent = parent_pb(commit)
    if parent is not None:
        info.parent_commit.CopyFrom(parent)
    repo = repo_pb(commit.repo)
    for child in store.children(commit):
        info.child_commits.append(pfs.Commit(repo=repo, id=child))
    ts(info.started, commit.started)
    ts(info.finishing, commit.finished)
    ts(info.finished, commit.finished)
    return info


def branch_pb(project: str, repo: str, name: str) -> pfs.Branch:
    return pfs.Branch(
        repo=pfs.Repo(name=repo, type="user", project=pfs.Project(name=project)), name=name
    )


def branch_info(branch: BranchRec) -> pfs.BranchInfo:
    info = pfs.BranchInfo(
        branch=pfs.Branch(repo=repo_pb(branch.repo), name=branch.name),
        provenance=[branch_pb(*p) for p in branch.provenance],
        direct_provenance=[branch_pb(*p) for p in branch.provenance],
        subvenance=[branch_pb(*p) for p in branch.subvenance],
    )
    if branch.head is not None:
        info.head.CopyFrom(commit_pb(branch.head))
    return info


def repo_info(repo: RepoRec, branches: list[str], size: int) -> pfs.RepoInfo:
    the_repo = repo_pb(repo)
    info = pfs.RepoInfo(
        repo=the_repo,
        description=repo.description,
        size_bytes_upper_bound=size,
        branches=[pfs.Branch(repo=the_repo, name=b) for b in branches],
        details=pfs.RepoInfo.Details(size_bytes=size),
    )
    ts(info.created, repo.created)
    return info


def file_info(commit: pfs.Commit, f: FileRec) -> pfs.FileInfo:
    info = pfs.FileInfo(
        file=pfs.File(commit=commit, path=f.path),
        file_type=pfs.DIR if f.is_dir else pfs.FILE,
    )
    if f.content is not None:
        info.size_bytes = f.content.size
        info.hash = f.content.hash
    ts(info.committed, f.committed)
    return info


def limit(items: Iterator[FileRec], number: int) -> Iterator[FileRec]:
    for i, item in enumerate(items):
        if number and i >= number:
            return
        yield item
