"""Small chunks live in the metadata database: no chunk file, no chunk fsync, same PFS.

A 4 KiB PUT used to pay a chunk file's two fsyncs (file, directory) on top
of its commit. Bytes up to ``INLINE_BYTES`` now go into ``inline_chunks`` in
the transaction that commits them: readable, copyable, durable across a
kill -9, and collected like any chunk once nothing refers to them.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from pachs3gw.pfs import refs
from pachs3gw.pfs.inprocess import InProcessChannel
from pachs3gw.pfsd import NON_BLOCKING_METHODS, start_server
from pachs3gw.pfsd._chunks import INLINE_BYTES
from pachs3gw.proto import pfs_v2_pb2 as pfs
from pachs3gw.proto import pfs_v2_pb2_grpc
from tests.pfsd.conftest import MIB, Pfsd, get, new_repo, put, wait_until
from tests.pfsd.test_gc import chunk_bytes


def inline_rows(data_dir: Path) -> int:
    db = sqlite3.connect(str(data_dir / "meta.sqlite"))
    try:
        return int(db.execute("SELECT count(*) FROM inline_chunks").fetchone()[0])
    finally:
        db.close()


def test_small_files_are_inline_read_copied_kept_across_kill_9_and_collected(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    server = Pfsd(data_dir).start()
    try:
        name = new_repo(server.api)
        head = refs.branch_head(name, "master")
        small = os.urandom(4096)
        edge = os.urandom(INLINE_BYTES)
        put(server.api, head, {"/small": small, "/empty": b"", "/tiny": b"t"})
        put(server.api, head, {"/edge": edge})
        assert chunk_bytes(data_dir) == 0  # no chunk file at all
        assert inline_rows(data_dir) == 2  # one stream's files share one chunk
        put(server.api, head, {"/big": os.urandom(INLINE_BYTES + 1)})
        assert chunk_bytes(data_dir) == INLINE_BYTES + 1  # past the bound: a file

        # Ranges of an inline chunk, and a copy (by reference) of an inline file.
        assert get(server.api, head, "/small") == small
        assert get(server.api, head, "/edge", offset=1000) == edge[1000:]
        copy = pfs.ModifyFileRequest(
            copy_file=pfs.CopyFile(dst="/copy", src=refs.file(head, "/small"))
        )
        server.api.ModifyFile(iter([pfs.ModifyFileRequest(set_commit=head), copy]))

        server.kill()
        server = Pfsd(data_dir).start()
        assert get(server.api, head, "/small") == small
        assert get(server.api, head, "/copy") == small
        assert get(server.api, head, "/edge") == edge
        assert get(server.api, head, "/tiny") == b"t"

        # Writing the same bytes again stores nothing new.
        put(server.api, head, {"/again": small + b"x"})
        before = inline_rows(data_dir)
        put(server.api, head, {"/again": small + b"x"})
        assert inline_rows(data_dir) == before

        server.api.DeleteRepo(pfs.DeleteRepoRequest(repo=refs.repo(name)))
        wait_until(lambda: inline_rows(data_dir) == 0)
        assert chunk_bytes(data_dir) == 0
    finally:
        server.stop()


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to name fds")
def test_a_small_put_fsyncs_no_chunk_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = start_server(str(tmp_path / "data"), "unix:" + str(tmp_path / "pfsd.sock"))
    channel = InProcessChannel(inline=NON_BLOCKING_METHODS)
    server.serve_on(channel.server)
    try:
        api = pfs_v2_pb2_grpc.APIStub(channel)
        name = new_repo(api)
        synced: list[str] = []
        original = os.fsync

        def fsync(fd: int) -> None:
            synced.append(os.readlink(f"/proc/self/fd/{fd}"))
            original(fd)

        monkeypatch.setattr(os, "fsync", fsync)
        put(api, refs.branch_head(name, "master"), {"/k": os.urandom(4096)})
        assert not [p for p in synced if "/chunks" in p], synced
        put(api, refs.branch_head(name, "master"), {"/big": os.urandom(MIB)})
        assert [p for p in synced if "/chunks" in p]  # a big one still is a file
    finally:
        channel.close()
        server.stop()
