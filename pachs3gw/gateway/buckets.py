"""Bucket names: which repo, branch, project and (optionally) commit a bucket is.

Pachyderm's S3 gateway spells a bucket ``[commit.]branch.repo[.project]``.
Pachyderm names (repos, branches, projects) are made of letters, digits,
``_`` and ``-`` only, so the dots are unambiguous separators; the one
ambiguity, three parts, is settled by the first part: a 32-hex commit ID makes
it ``commit.branch.repo``, anything else ``branch.repo.project``. (A branch
whose name is 32 hex digits cannot be addressed in the three-part form; the
four-part form ``commit.branch.repo.project`` or ``branch.repo`` still works.)

Repos whose names start with ``_`` are the gateway's own (metadata,
multipart parts) or pachd's system repos: they are not buckets.
"""

from __future__ import annotations

import re

import attrs

from pachs3gw.pfs import refs
from pachs3gw.proto import pfs_v2_pb2 as pfs
from pachs3gw.s3 import errors

_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_COMMIT_ID = re.compile(r"^[0-9a-f]{32}$")
#: pachd refuses longer repo/project names; S3 bucket names stop at 63 anyway.
_MAX_NAME = 63


@attrs.frozen
class BucketRef:
    """A parsed bucket name."""

    name: str
    repo: str
    branch: str
    project: str = refs.DEFAULT_PROJECT
    #: Set for the read-only ``commit.branch.repo[.project]`` view.
    commit_id: str | None = None

    @property
    def read_only(self) -> bool:
        return self.commit_id is not None

    @property
    def label(self) -> str:
        """Pachyderm's own spelling of the branch: ``project/repo@branch``."""
        return f"{self.project}/{self.repo}@{self.branch}"

    def pfs_repo(self) -> pfs.Repo:
        return refs.repo(self.repo, self.project)

    def pfs_branch(self) -> pfs.Branch:
        return refs.branch(self.repo, self.branch, self.project)

    def head(self) -> pfs.Commit:
        """Where reads look: the branch head, or the fixed commit of a view."""
        if self.commit_id is not None:
            return self.at(self.commit_id)
        return refs.branch_head(self.repo, self.branch, self.project)

    def at(self, commit_id: str) -> pfs.Commit:
        return refs.commit(self.repo, commit_id, self.project, self.branch)

    def check_writable(self) -> None:
        """Raise AccessDenied for the read-only commit view."""
        if self.commit_id is not None:
            raise errors.AccessDenied(
                f"Bucket {self.name} is a read-only view of commit {self.commit_id} "
                f"of {self.label}; write to bucket {self.branch}.{self.repo}"
                + ("" if self.project == refs.DEFAULT_PROJECT else f".{self.project}")
                + " instead.",
                resource=self.name,
            )


def parse_bucket(name: str) -> BucketRef:
    """Parse a bucket name, raising InvalidBucketName when it names nothing we serve."""
    parts = name.split(".")
    commit_id: str | None = None
    if len(parts) == 4 or (len(parts) == 3 and _COMMIT_ID.match(parts[0])):
        commit_id = parts[0]
        if not _COMMIT_ID.match(commit_id):
            raise _invalid(name, f"{commit_id!r} is not a commit ID (32 hex digits)")
        parts = parts[1:]
    if len(parts) == 2:
        branch, repo = parts
        project = refs.DEFAULT_PROJECT
    elif len(parts) == 3:
        branch, repo, project = parts
    else:
        raise _invalid(
            name, "expected branch.repo, branch.repo.project or commit.branch.repo[.project]"
        )
    for what, value in (("branch", branch), ("repo", repo), ("project", project)):
        if not _NAME.match(value) or len(value) > _MAX_NAME:
            raise _invalid(
                name,
                f"{what} name {value!r} must be 1-{_MAX_NAME} letters, digits, '_' or '-'",
            )
    if repo.startswith("_"):
        raise _invalid(name, f"repo names starting with '_' are reserved ({repo!r})")
    return BucketRef(name=name, repo=repo, branch=branch, project=project, commit_id=commit_id)


def bucket_name(repo: str, branch: str, project: str = refs.DEFAULT_PROJECT) -> str:
    """The name ListBuckets shows for a branch (the short form in the default project)."""
    if project == refs.DEFAULT_PROJECT:
        return f"{branch}.{repo}"
    return f"{branch}.{repo}.{project}"


def _invalid(name: str, why: str) -> errors.S3Error:
    return errors.InvalidBucketName(
        f"The specified bucket is not valid: {why}.", resource=name, extra={"BucketName": name}
    )
