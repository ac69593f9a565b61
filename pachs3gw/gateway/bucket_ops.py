"""Bucket operations over PFS: a bucket is a branch of a repo.

CreateBucket makes the project and repo when they are missing, then the
branch; DeleteBucket removes the branch, and the repo with its last branch,
and only while the branch's newest finished commit has no files (S3's
BucketNotEmpty). Versioning is always on: every write is a commit.

Threads: reactor thread only.
"""

from __future__ import annotations

from typing import Sequence

from pachs3gw.gateway._core import BackendCore
from pachs3gw.gateway._errors import s3_operation
from pachs3gw.gateway._pfsutil import to_datetime
from pachs3gw.gateway.buckets import bucket_name, parse_bucket
from pachs3gw.pfs import errors as pfs_errors
from pachs3gw.pfs import refs
from pachs3gw.s3 import errors
from pachs3gw.s3.interfaces import BucketEntry


class BucketOps:
    """The bucket operations of one backend, over its core."""

    def __init__(self, core: BackendCore) -> None:
        self._core = core

    @s3_operation
    async def list_buckets(self) -> Sequence[BucketEntry]:
        client = self._core.client
        entries = []
        for info in await client.list_repos("user"):
            repo = info.repo
            if repo.name.startswith("_"):
                continue
            project = repo.project.name or refs.DEFAULT_PROJECT
            branches = [b.name for b in info.branches]
            if not branches:
                branches = [b.branch.name for b in await client.list_branches(info.repo)]
            created = to_datetime(info.created)
            for name in sorted(set(branches)):
                entries.append(BucketEntry(bucket_name(repo.name, name, project), created))
        entries.sort(key=lambda e: e.name)
        return entries

    @s3_operation
    async def create_bucket(self, bucket: str) -> None:
        client = self._core.client
        ref = parse_bucket(bucket)
        ref.check_writable()
        try:
            await self._core.branch_info(ref)
        except pfs_errors.NotFound:
            pass
        else:
            raise errors.BucketAlreadyOwnedByYou(resource=bucket, extra={"BucketName": bucket})
        try:
            await client.create_repo(ref.pfs_repo())
        except pfs_errors.AlreadyExists:
            pass
        except pfs_errors.ProjectNotFound:
            try:
                await client.create_project(ref.project)
            except pfs_errors.AlreadyExists:
                pass
            try:
                await client.create_repo(ref.pfs_repo())
            except pfs_errors.AlreadyExists:
                pass
        await client.create_branch(ref.pfs_branch())

    @s3_operation
    async def delete_bucket(self, bucket: str) -> None:
        client = self._core.client
        ref = parse_bucket(bucket)
        ref.check_writable()
        last = await self._core.last_finished(ref)
        if last:
            try:
                top = await client.list_files(refs.file(ref.at(last), "/"), number=1)
            except pfs_errors.FileNotFound:
                top = []
            if top:
                raise errors.BucketNotEmpty(resource=bucket, extra={"BucketName": bucket})
        self._core.writers.forget_writable(ref)
        await client.delete_branch(ref.pfs_branch())
        try:
            repo_info = await client.inspect_repo(ref.pfs_repo())
        except pfs_errors.NotFound:
            return
        if not repo_info.branches and not await client.list_branches(ref.pfs_repo()):
            await client.delete_repo(ref.pfs_repo())

    @s3_operation
    async def head_bucket(self, bucket: str) -> None:
        ref = parse_bucket(bucket)
        await self._core.bucket_exists(ref)

    @s3_operation
    async def get_bucket_location(self, bucket: str) -> str:
        await self._core.bucket_exists(parse_bucket(bucket))
        return ""

    @s3_operation
    async def get_bucket_versioning(self, bucket: str) -> str:
        await self._core.bucket_exists(parse_bucket(bucket))
        return "Enabled"


__all__ = ["BucketOps"]
