"""What a small S3 write costs the embedded store in syncs: one WAL sync, no chunk fsync.

The rules live in the store (``pfsd/_db.py``: only a write that finishes a
commit is synced; ``pfsd/_chunks.py``: small chunks are database rows) and in
the gateway's use of ``DEFER_SYNC_METADATA`` (its metadata record is made
durable by the data commit's FinishCommit). This pins their sum, through the
backend the gateway uses, on the in-process transport.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import pytest_twisted

from pachs3gw.gateway import PfsBackend
from pachs3gw.pfs.client import PfsClient
from pachs3gw.pfs.inprocess import InProcessChannel
from pachs3gw.s3.interfaces import ObjectMetadata

from .conftest import Body


class Syncs:
    """fsync/fdatasync calls made from Python, by the file they sync."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.paths: list[str] = []
        for name in ("fdatasync", "fsync"):
            original = getattr(os, name)

            def counting(fd: int, original: Any = original) -> None:
                self.paths.append(os.readlink(f"/proc/self/fd/{fd}"))
                original(fd)

            monkeypatch.setattr(os, name, counting)

    def wal(self) -> int:
        return sum(p.endswith("-wal") for p in self.paths)

    def chunks(self) -> int:
        return sum("/chunks" in p for p in self.paths)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to name fds")
@pytest_twisted.inlineCallbacks
def test_a_4_kib_put_and_a_delete_each_sync_the_wal_once_and_no_chunk_file(
    backend: PfsBackend, client: PfsClient, bucket_name: str, monkeypatch: pytest.MonkeyPatch
) -> Any:
    if not isinstance(client._channel, InProcessChannel):
        pytest.skip("counts the syncs of the store in this process")
    yield backend.create_bucket(bucket_name)
    meta = ObjectMetadata(headers={"content-type": "text/plain"}, user={"k": "v"})
    yield backend.put_object(bucket_name, "warm", Body(b"w"), meta)  # the metadata repo exists
    syncs = Syncs(monkeypatch)
    yield backend.put_object(bucket_name, "k", Body(os.urandom(4096)), meta)
    assert (syncs.wal(), syncs.chunks()) == (1, 0), syncs.paths
    syncs.paths.clear()
    yield backend.delete_object(bucket_name, "k", None)
    assert (syncs.wal(), syncs.chunks()) == (1, 0), syncs.paths
