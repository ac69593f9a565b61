"""ListObjectVersions and DELETE ``?versionId=``: S3 versioning backed by the branch's commits.

Every write is a commit, so every bucket is versioned (GetBucketVersioning
says ``Enabled``, PutBucketVersioning of ``Enabled`` is a no-op). A key's
versions are the commits that changed it, newest first (see
:mod:`pachs3gw.gateway.history`): the commit that wrote bytes is a version
whose ID is the one the PUT returned and that ``?versionId=`` reads; the
commit that removed the key is a delete marker. ETags come through the
metadata store's lookup for the version's content, like any listing's.

Commits are immutable history, so a version cannot be deleted. The one
``DELETE ?versionId=`` S3 clients rely on -- removing the delete marker that
hides a key, to bring the previous version back -- is done the PFS way: one
new commit that copies the previous version back (no data through the
gateway). Deleting any other version is NotImplemented and says why.

Threads: reactor thread only.
"""

from __future__ import annotations

from typing import Callable

from pachs3gw.gateway._core import BackendCore
from pachs3gw.gateway.commits import Scope
from pachs3gw.gateway._errors import s3_operation
from pachs3gw.gateway._pfsutil import to_datetime
from pachs3gw.gateway.buckets import BucketRef, parse_bucket
from pachs3gw.gateway.history import Change
from pachs3gw.gateway.listing import TOP
from pachs3gw.pfs import client as pfs_client
from pachs3gw.s3 import errors
from pachs3gw.s3.interfaces import DeleteResult, ObjectVersion, VersionsPage


def immutable_version(key: str) -> errors.S3Error:
    """Why ``DELETE ?versionId=`` of anything but the latest delete marker is refused."""
    return errors.NotImplemented_(
        "Deleting a specific version is not supported: versions are PFS commits, which are "
        "immutable history. Delete without versionId to remove the current object, or delete "
        "the latest delete marker's version ID to restore the version before it.",
        resource=key,
    )


class VersionOps:
    """ListObjectVersions and DELETE ``?versionId=`` of one backend, over its core."""

    def __init__(self, core: BackendCore) -> None:
        self._core = core

    @s3_operation
    async def list_object_versions(
        self,
        bucket: str,
        prefix: str,
        delimiter: str,
        key_marker: str,
        version_id_marker: str,
        max_keys: int,
    ) -> VersionsPage:
        ref = parse_bucket(bucket)
        history = await self._core.branch_history(ref)
        if history is None or max_keys <= 0:
            return VersionsPage(versions=(), common_prefixes=(), is_truncated=False)
        chosen: list[tuple[str, Change, bool]] = []
        prefixes: list[str] = []
        last: tuple[str, str | None] | None = None
        truncated = False
        # Start at the marker key itself only to resume inside its versions.
        resume_inside = bool(key_marker and version_id_marker)
        if key_marker and key_marker >= prefix:
            start, inclusive = key_marker, resume_inside
        else:
            start, inclusive = prefix, True
        i = history.first_index_at_or_after(start)
        if not inclusive and i < len(history.keys) and history.keys[i] == start:
            i += 1
        keys = history.keys
        while i < len(keys) and not truncated:
            key = keys[i]
            if not key.startswith(prefix):
                break
            if delimiter:
                cut = key.find(delimiter, len(prefix))
                if cut >= 0:
                    group = key[: cut + len(delimiter)]
                    if not (key_marker and group <= key_marker):
                        if len(chosen) + len(prefixes) == max_keys:
                            truncated = True
                            break
                        prefixes.append(group)
                        last = (group, None)
                    # Past every key of the group.
                    i = history.first_index_at_or_after(group + TOP * 4)
                    continue
            skipping = resume_inside and key == key_marker
            for n, change in enumerate(history.newest_first(key)):
                if skipping:
                    skipping = change.commit_id != version_id_marker
                    continue
                if len(chosen) + len(prefixes) == max_keys:
                    truncated = True
                    break
                chosen.append((key, change, n == 0))
                last = (key, change.commit_id)
            i += 1
        files = [(k, c.file, c.commit_id) for k, c, _ in chosen if c.file is not None]
        etags = iter(
            await self._core.meta.etags(
                self._core.client,
                ref.project,
                ref.repo,
                [(k, f.hash) for k, f, _ in files],
                at=[ref.at(commit_id) for _, _, commit_id in files],
            )
        )
        versions = []
        for key, change, latest in chosen:
            if change.file is None:
                versions.append(
                    ObjectVersion(
                        key=key,
                        version_id=change.commit_id,
                        is_latest=latest,
                        last_modified=change.committed,
                        is_delete_marker=True,
                    )
                )
                continue
            versions.append(
                ObjectVersion(
                    key=key,
                    version_id=change.commit_id,
                    is_latest=latest,
                    last_modified=to_datetime(change.file.committed)
                    if change.file.HasField("committed")
                    else change.committed,
                    size=change.file.size_bytes,
                    etag=next(etags),
                )
            )
        return VersionsPage(
            versions=versions,
            common_prefixes=prefixes,
            is_truncated=truncated,
            next_key_marker=last[0] if truncated and last is not None else None,
            next_version_id_marker=last[1] if truncated and last is not None else None,
        )

    async def delete_version(self, ref: BucketRef, key: str, version_id: str) -> DeleteResult:
        """DELETE ``?versionId=``: restore the version before the latest delete marker.

        One new commit copies the previous version back (its bytes and, via
        the metadata record of its content, its ETag and headers). Any other
        version ID is refused: NoSuchVersion if it is not a commit of the
        branch's history, NotImplemented (commits are immutable) otherwise.
        """
        await self._core.writable(ref)
        await self._core.check_version(ref, version_id)
        history = await self._core.branch_history(ref)
        changes = history.newest_first(key) if history is not None else []
        if not changes or changes[0].commit_id != version_id or not changes[0].is_delete_marker:
            raise immutable_version(key)
        previous = next((c for c in changes[1:] if not c.is_delete_marker), None)
        if previous is None:
            raise immutable_version(key)
        source, _, record = await self._core.stat(ref, key, previous.commit_id)
        client = self._core.client
        path = await self._core.keys.write_path(client, ref.head(), key)

        async def step(scope: Scope) -> Callable[[str], DeleteResult]:
            await scope.modify(
                client, [pfs_client.set_commit(scope.commit), pfs_client.copy_file(path, source)]
            )
            if not record.derived:
                await self._core.recorded(scope, key, path, record)
            return lambda _: DeleteResult(key=key, version_id=version_id, delete_marker=True)

        return await self._core.submit(ref, [path], step)


__all__ = ["VersionOps", "immutable_version"]
