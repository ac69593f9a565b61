"""Small PFS helpers the gateway modules share."""

from __future__ import annotations

import os
import re
import socket
from datetime import datetime, timezone
from typing import Iterator

from google.protobuf.timestamp_pb2 import Timestamp
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorFromThreads
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from pachs3gw.pfs import errors as pfs_errors
from pachs3gw.pfs import refs
from pachs3gw.pfs.client import PfsClient
from pachs3gw.proto import pfs_v2_pb2 as pfs

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

#: How the description of every commit a gateway opens for S3 writes starts
#: (StartCommit): an open commit with it that no live writer holds is an
#: abandoned write. The rest names the writer (:func:`write_description`).
WRITE_DESCRIPTION = "pachs3gw: S3 write"
_WRITER = re.compile(r" \(gateway (?P<host>\S+) pid (?P<pid>[0-9]+)\)$")
#: What an abandoned write's commit is finished with, once emptied (ClearCommit):
#: it holds nothing, and metadata records naming it are never used.
DISCARDED_DESCRIPTION = "pachs3gw: abandoned S3 write, discarded (never acknowledged)"


def write_description() -> str:
    """The description of a write commit of this process (host and pid: see ``commits``).

    Computed when used: twistd forks after the modules are imported.
    """
    return f"{WRITE_DESCRIPTION} (gateway {socket.gethostname()} pid {os.getpid()})"


def write_commit_owner(description: str) -> tuple[str, int] | None:
    """``(host, pid)`` of the gateway that opened a write commit (``("", 0)`` when
    it does not say); None for a commit that is no gateway's write."""
    if not description.startswith(WRITE_DESCRIPTION):
        return None
    found = _WRITER.search(description)
    if found is None:
        return "", 0
    return found.group("host"), int(found.group("pid"))


def to_datetime(ts: Timestamp) -> datetime:
    """A protobuf Timestamp as an aware UTC datetime (the epoch if unset)."""
    if not ts.seconds and not ts.nanos:
        return EPOCH
    return datetime.fromtimestamp(ts.seconds + ts.nanos / 1e9, tz=timezone.utc)


def read_bytes(
    client: PfsClient, reactor: IReactorFromThreads, pool: ThreadPool, file: pfs.File
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
