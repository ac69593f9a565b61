"""Small PFS helpers the gateway modules share."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterator

from google.protobuf.timestamp_pb2 import Timestamp
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool
from twisted.logger import Logger

from pachs3gw.pfs import errors as pfs_errors
from pachs3gw.pfs import refs
from pachs3gw.pfs.client import PfsClient
from pachs3gw.proto import pfs_v2_pb2 as pfs

log = Logger()

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


#: Never created: a CopyFile from it fails on pachd and on the embedded server alike.
POISON_REPO = "_s3gateway_poison_"


def poison() -> pfs.ModifyFileRequest:
    """A request every PFS server refuses: a CopyFile from a repo that never exists."""
    src = refs.file(refs.commit(POISON_REPO, "0" * 32), "/aborted")
    return pfs.ModifyFileRequest(copy_file=pfs.CopyFile(dst="/.s3gateway-aborted", src=src))


async def modify_all_or_nothing(
    client: PfsClient, requests: Iterator[pfs.ModifyFileRequest]
) -> None:
    """One ModifyFile whose commit happens only if ``requests`` ends normally.

    Raising from the request iterator makes grpc cancel the call, but a
    Python grpc server can see that cancellation as a normal end of stream
    (its request iterator stops before the cancellation is processed), and
    would then commit a partial write. So when ``requests`` fails (bad
    digest, client gone), the stream instead ends with a request every PFS
    server refuses -- a CopyFile from a repo that does not exist -- so the
    server fails the whole stream, and the original error is raised here.

    The iterator runs on grpc's request-consumer thread.
    """
    failures: list[Exception] = []

    def guarded() -> Iterator[pfs.ModifyFileRequest]:
        try:
            yield from requests
        except Exception as e:  # noqa: BLE001 - re-raised below, on the reactor thread
            failures.append(e)
            yield poison()

    try:
        await client.modify_file(guarded())
    except Exception:
        if failures:
            raise failures[0] from None
        raise
    if failures:
        log.error("PFS accepted a poisoned ModifyFile: a partial write may be visible")
        raise failures[0]
