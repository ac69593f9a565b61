"""ListObjectVersions: the current object of every key, with the commit that holds it.

Every commit is a version, so GetBucketVersioning says ``Enabled`` and
``?versionId=<commit>`` reads any commit of the branch's history. Listing
*all* past versions of every key would mean diffing the branch's commits;
this lists the current version of each key (IsLatest), its version ID being
the head commit that the listing read (a commit in which the object has
exactly these bytes, so GET ``?versionId=`` of it returns them).
"""

from __future__ import annotations

from pachs3gw.gateway._core import BackendCore
from pachs3gw.gateway._errors import s3_operation
from pachs3gw.gateway._pfsutil import to_datetime
from pachs3gw.gateway.buckets import parse_bucket
from pachs3gw.gateway.listing import list_page
from pachs3gw.s3.interfaces import ObjectVersion, VersionsPage


class VersionsMixin(BackendCore):
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
        commit = await self._read_commit(ref, None)
        if commit is None:
            return VersionsPage(versions=(), common_prefixes=(), is_truncated=False)
        # One version per key: a version-ID marker means "this key is done".
        raw = await list_page(self._client, commit, prefix, delimiter, key_marker, max_keys)
        etags = await self._meta.etags(
            self._client, ref.project, ref.repo, [(k, f.hash) for k, f in raw.files]
        )
        versions = [
            ObjectVersion(
                key=k,
                version_id=commit.id,
                is_latest=True,
                last_modified=to_datetime(f.committed),
                size=f.size_bytes,
                etag=etag,
            )
            for (k, f), etag in zip(raw.files, etags)
        ]
        last_is_key = bool(versions) and raw.next_marker == versions[-1].key
        return VersionsPage(
            versions=versions,
            common_prefixes=raw.common_prefixes,
            is_truncated=raw.is_truncated,
            next_key_marker=raw.next_marker if raw.is_truncated else None,
            next_version_id_marker=commit.id if raw.is_truncated and last_is_key else None,
        )
