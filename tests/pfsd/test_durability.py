"""What the store syncs: a write that finishes a commit, not one that changes an open commit.

An S3 PUT writes into its own open commit (StartCommit, ModifyFile, then
FinishCommit once its metadata is written); syncing the WAL at each of those
steps cost three syncs where one is owed. The rule (``pfsd/_db.py``): only a
write that finishes a commit, or changes anything outside an open commit, is
synced before it returns; the WAL is written in order, so that sync makes
every earlier write durable too. A kill -9 loses nothing either way (the
pages are in the WAL file); the open commit's writes survive it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import pytest

from pachs3gw.pfs import client as pfs_client
from pachs3gw.pfs import refs
from pachs3gw.pfs.inprocess import InProcessChannel
from pachs3gw.pfsd import NON_BLOCKING_METHODS, start_server
from pachs3gw.proto import pfs_v2_pb2 as pfs
from pachs3gw.proto import pfs_v2_pb2_grpc
from pachs3gw.proto.conventions import DEFER_SYNC_METADATA
from tests.pfsd.conftest import Pfsd


class WalSyncs:
    """Counts fdatasync/fsync calls on the store's WAL file, the syncs that make a write durable."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        for name in ("fdatasync", "fsync"):
            original = getattr(os, name)

            def counting(fd: int, original: Any = original) -> None:
                if os.readlink(f"/proc/self/fd/{fd}").endswith("-wal"):
                    self.count += 1
                original(fd)

            monkeypatch.setattr(os, name, counting)

    def during(self, call: Any) -> int:
        before = self.count
        call()
        return self.count - before


@pytest.fixture
def api(tmp_path: Path) -> Iterator[pfs_v2_pb2_grpc.APIStub]:
    server = start_server(str(tmp_path / "data"), "unix:" + str(tmp_path / "pfsd.sock"))
    channel = InProcessChannel(inline=NON_BLOCKING_METHODS)
    server.serve_on(channel.server)
    # SQLite's own COMMIT syncs are off (NORMAL in WAL mode syncs only at
    # checkpoints), so the syncs counted below are all a write gets.
    database = server.store.database
    for db in (database.connection(), database._wdb):
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 1
    try:
        yield pfs_v2_pb2_grpc.APIStub(channel)
    finally:
        channel.close()
        server.stop()


def _put(api: Any, commit: pfs.Commit, path: str, data: bytes) -> None:
    api.ModifyFile(iter([pfs_client.set_commit(commit), pfs_client.add_bytes(path, data)]))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to name fds")
def test_only_writes_that_finish_a_commit_sync_the_wal(
    api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncs = WalSyncs(monkeypatch)
    repo = refs.repo("durable")
    branch = pfs.Branch(repo=repo, name="master")
    assert syncs.during(lambda: api.CreateRepo(pfs.CreateRepoRequest(repo=repo))) >= 1

    opened: list[pfs.Commit] = []
    assert syncs.during(lambda: opened.append(api.StartCommit(pfs.StartCommitRequest(branch=branch)))) == 0
    commit = opened[0]
    assert syncs.during(lambda: _put(api, commit, "/open", b"in an open commit")) == 0
    assert syncs.during(lambda: api.FinishCommit(pfs.FinishCommitRequest(commit=commit))) == 1

    # A ModifyFile on a finished head makes and finishes a commit: synced.
    head = refs.branch_head("durable", "master")
    assert syncs.during(lambda: _put(api, head, "/auto", b"one-off commit")) == 1

    got = b"".join(
        piece.value
        for piece in api.GetFile(pfs.GetFileRequest(file=pfs.File(commit=head, path="/open")))
    )
    assert got == b"in an open commit"


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to name fds")
def test_a_modify_file_that_defers_its_sync_is_made_durable_by_the_next_finish(
    api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gateway's metadata record: written just before the data commit it describes finishes."""
    syncs = WalSyncs(monkeypatch)
    for name in ("meta", "data"):
        api.CreateRepo(pfs.CreateRepoRequest(repo=refs.repo(name)))
    data = pfs.Branch(repo=refs.repo("data"), name="master")
    commit = api.StartCommit(pfs.StartCommitRequest(branch=data))
    _put(api, commit, "/object", b"bytes")
    record = iter([
        pfs_client.set_commit(refs.branch_head("meta", "master")),
        pfs_client.add_bytes("/record", b"its metadata"),
    ])
    deferred = lambda: api.ModifyFile(record, metadata=(DEFER_SYNC_METADATA,))  # noqa: E731
    assert syncs.during(deferred) == 0
    assert syncs.during(lambda: api.FinishCommit(pfs.FinishCommitRequest(commit=commit))) == 1
    head = refs.branch_head("meta", "master")
    got = b"".join(
        piece.value
        for piece in api.GetFile(pfs.GetFileRequest(file=pfs.File(commit=head, path="/record")))
    )
    assert got == b"its metadata"


def test_an_open_commit_and_its_files_survive_a_kill_9(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = Pfsd(data_dir).start()
    try:
        repo = refs.repo("killed")
        server.api.CreateRepo(pfs.CreateRepoRequest(repo=repo))
        commit = server.api.StartCommit(
            pfs.StartCommitRequest(branch=pfs.Branch(repo=repo, name="master"))
        )
        _put(server.api, commit, "/open", b"written before the kill")
        server.kill()
        server = Pfsd(data_dir).start()
        info = server.api.InspectCommit(pfs.InspectCommitRequest(commit=commit))
        assert not info.HasField("finished")
        server.api.FinishCommit(pfs.FinishCommitRequest(commit=commit))
        got = b"".join(
            piece.value
            for piece in server.api.GetFile(
                pfs.GetFileRequest(file=pfs.File(commit=commit, path="/open"))
            )
        )
        assert got == b"written before the kill"
    finally:
        server.stop()
