"""kill -9 of the server mid-stream: acknowledged writes survive, nothing partial shows."""

from __future__ import annotations

import hashlib
import random
import threading
import time
from pathlib import Path
from typing import Iterator, Optional

import grpc

from pachs3gw.pfs import client as pfs_client
from pachs3gw.pfs import refs
from pachs3gw.proto import pfs_v2_pb2 as pfs
from tests.pfsd.conftest import MIB, Pfsd, pfs_hash

ITERATIONS = 20


def _body(seed: int) -> bytes:
    """Deterministic file contents: 0 to ~6 MiB, so some streams span chunks."""
    rng = random.Random(seed)
    size = rng.choice([0, 1, 100, 4096, MIB, 3 * MIB + 17, 6 * MIB + 5])
    block = hashlib.sha256(str(seed).encode()).digest() * 2048  # 64 KiB
    return (block * (size // len(block) + 1))[:size]


def test_sigkill_mid_stream_keeps_acknowledged_files_and_no_partial_ones(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = Pfsd(data_dir).start()
    server.api.CreateRepo(pfs.CreateRepoRequest(repo=refs.repo("crash")))
    head = refs.branch_head("crash", "master")
    acknowledged: dict[str, bytes] = {}
    attempted: dict[str, bytes] = {}
    seed = 0
    verified: set[str] = set()
    rng = random.Random(1234)
    for iteration in range(ITERATIONS):
        api = server.api
        stop = threading.Event()

        def writer() -> None:
            nonlocal seed
            while not stop.is_set():
                seed += 1
                path = f"/f{seed:05d}"
                body = _body(seed)
                attempted[path] = body

                def requests() -> Iterator[pfs.ModifyFileRequest]:
                    yield pfs_client.set_commit(head)
                    yield from pfs_client.put_file(path, [body])

                try:
                    api.ModifyFile(requests(), timeout=30)
                except (grpc.RpcError, ValueError):
                    return
                acknowledged[path] = body

        thread = threading.Thread(target=writer)
        thread.start()
        time.sleep(rng.uniform(0.05, 0.6))
        server.kill_process()
        stop.set()
        thread.join()
        server.kill()
        server = Pfsd(data_dir).start()
        _check(server, head, acknowledged, attempted, verified)
    server.stop()
    assert len(acknowledged) > ITERATIONS


def _check(
    server: Pfsd,
    head: pfs.Commit,
    acknowledged: dict[str, bytes],
    attempted: dict[str, bytes],
    verified: set[str],
) -> None:
    """Every acknowledged file is listed; every listed file is whole.

    Sizes and hashes of all files are checked every time; the bytes of each
    file once (they are immutable).
    """
    api = server.api
    try:
        listed = {
            f.file.path: f for f in api.ListFile(pfs.ListFileRequest(file=refs.file(head, "/")))
        }
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.NOT_FOUND  # no commit yet on master
        listed = {}
    for path in acknowledged:
        assert path in listed, f"acknowledged {path} lost"
    for path, info in listed.items():
        body = attempted[path]  # a file nobody wrote would be a bug too
        assert info.size_bytes == len(body), f"partial {path}"
        assert info.hash == pfs_hash(body)
        if path in verified:
            continue
        verified.add(path)
        got = b"".join(m.value for m in api.GetFile(pfs.GetFileRequest(file=refs.file(head, path))))
        assert got == body
