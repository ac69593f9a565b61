"""Large single-PUT bodies are staged in the internal repo before they join a commit.

A body streamed into its branch's open commit would hold that commit -- and
every other write of the branch, queued behind it -- for as long as the
client takes to send it. So a commit takes a body only once it has all
arrived: a small one waits in memory (``IBodySource.arrived``); one over
:data:`STAGE_ABOVE`, of unknown length, or too big for the body's buffer is
first written to ``_s3gateway_multipart_`` at
``/staging/<uuid>`` (an auto-commit of its own: nothing of the branch is
held), and the branch's commit then takes it with CopyFile, which copies no
data (as multipart Complete does with parts). The staged file is deleted
right after. A gateway killed in between leaves the staged file behind in
the internal repo; nothing of it is visible in any bucket.

Clients switch to multipart uploads above 8 MiB (boto3, the AWS CLI), so
staging costs two small internal commits only for the large single PUTs
other clients make (curl, s3cmd up to 15 MiB).

Threads: reactor thread; the request iterators run on grpc's
request-consumer thread.
"""

from __future__ import annotations

import uuid
from typing import Iterator

import attrs
from twisted.logger import Logger

from pachs3gw.gateway._mplayout import MULTIPART_BRANCH, MULTIPART_REPO, mp_head
from pachs3gw.gateway._pfsutil import ensure_repo
from pachs3gw.pfs import client as pfs_client
from pachs3gw.pfs import errors as pfs_errors
from pachs3gw.pfs import refs
from pachs3gw.pfs.client import PfsClient
from pachs3gw.proto import pfs_v2_pb2 as pfs
from pachs3gw.s3.interfaces import IBodySource

log = Logger()

#: Bodies larger than this (bytes) are staged.
STAGE_ABOVE = 8 * 1024 * 1024
STAGING_DIR = "/staging/"


@attrs.frozen
class Staged:
    """A body written to the internal repo, with what its stream computed."""

    path: str
    md5: str
    checksums: dict[str, str]

    @property
    def file(self) -> pfs.File:
        """The copy source (the internal branch's head: the file stays until released)."""
        return refs.file(mp_head(), self.path)


class Staging:
    """Stages large bodies; shared by the backends of one factory (it remembers the repo)."""

    def __init__(self, above: int = STAGE_ABOVE) -> None:
        self.above = above
        self._repo_ready = False

    def wanted(self, body: IBodySource) -> bool:
        length = body.expected_length
        return length is None or length > self.above

    async def stage(self, client: PfsClient, body: IBodySource) -> Staged:
        """Write ``body`` to a staging file (all or nothing, like any upload)."""
        if not self._repo_ready:
            await ensure_repo(client, MULTIPART_REPO, MULTIPART_BRANCH)
            self._repo_ready = True
        path = f"{STAGING_DIR}{uuid.uuid4().hex}"
        md5: list[str] = []

        def requests() -> Iterator[pfs.ModifyFileRequest]:
            # grpc's request-consumer thread.
            yield pfs_client.set_commit(mp_head())
            yield from pfs_client.put_file(path, body.chunks())
            md5.append(body.md5_hex())

        # Its sync can wait for the commit that copies it (on the same server):
        # a staged file nothing copied is garbage anyway.
        await client.modify_file(requests(), defer_sync=True)
        return Staged(path=path, md5=md5[0], checksums=dict(body.checksums()))

    async def release(self, client: PfsClient, staged: Staged) -> None:
        """Delete a staged file once its write is done (never raises: it is garbage now)."""
        try:
            await client.modify_file(
                [pfs_client.set_commit(mp_head()), pfs_client.delete_file(staged.path)],
                defer_sync=True,  # losing the deletion only leaves garbage
            )
        except pfs_errors.PfsError as e:
            log.warn("could not delete staged body {path}: {error}", path=staged.path, error=e)
