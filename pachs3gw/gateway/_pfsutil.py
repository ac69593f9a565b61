"""Small PFS helpers the gateway modules share."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterator

from google.protobuf.timestamp_pb2 import Timestamp
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from pachs3gw.pfs import errors as pfs_errors
from pachs3gw.pfs import refs
from pachs3gw.pfs.client import PfsClient
from pachs3gw.proto import pfs_v2_pb2 as pfs

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def to_datetime(ts: Timestamp) -> datetime:
    """A protobuf Timestamp as an aware UTC datetime (the epoch if unset)."""
    if not ts.seconds and not ts.nanos:
        return EPOCH
    return datetime.fromtimestamp(ts.seconds + ts.nanos / 1e9, tz=timezone.utc)


def read_bytes(
    client: PfsClient, reactor: Any, pool: ThreadPool, file: pfs.File
) -> Deferred[bytes]:
    """*Reactor thread.* The whole content of a small file (drained in ``pool``)."""
    reader = client.open_file(file)

    def drain() -> bytes:
        return b"".join(reader)

    d: Deferred[bytes] = deferToThreadPool(reactor, pool, drain)
    return d


async def ensure_repo(client: PfsClient, name: str, branch: str = "master") -> None:
    """Create an internal repo and its branch unless they exist."""
    repo = refs.repo(name)
    try:
        await client.create_repo(repo, description="pachs3gw internal state")
    except pfs_errors.AlreadyExists:
        pass
    try:
        await client.inspect_branch(refs.branch(name, branch))
    except pfs_errors.NotFound:
        try:
            await client.create_branch(refs.branch(name, branch))
        except pfs_errors.AlreadyExists:
            pass


async def modify_all_or_nothing(
    client: PfsClient, requests: Iterator[pfs.ModifyFileRequest]
) -> None:
    """One ModifyFile whose commit happens only if ``requests`` ends normally.

    That is what every :meth:`PfsClient.modify_file` is (the framing lives in
    ``proto/conventions.py`` and is applied there); this name stays for the
    callers that say so.
    """
    await client.modify_file(requests)
