"""Fixtures for the embedded PFS server: the standalone server as a child process.

Tests talk to it exactly as the gateway does: over gRPC, with the project's
request builders (``pachs3gw.pfs``) and the generated stubs.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Iterable, Iterator, Optional

import grpc
import pytest

from pachs3gw.pfs import client as pfs_client
from pachs3gw.pfs import refs
from pachs3gw.proto import auth_v2_pb2_grpc
from pachs3gw.proto import pfs_v2_pb2 as pfs
from pachs3gw.proto import pfs_v2_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
MIB = 1 << 20


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


class Pfsd:
    """``python -m pachs3gw.pfsd`` on an ephemeral 127.0.0.1 port over ``data_dir``."""

    def __init__(self, data_dir: Path, tokens: Optional[Path] = None) -> None:
        self.data_dir = data_dir
        self.tokens = tokens
        self.process: Optional[subprocess.Popen[str]] = None
        self.address = ""
        self._channel: Optional[grpc.Channel] = None

    def start(self) -> "Pfsd":
        cmd = [sys.executable, "-m", "pachs3gw.pfsd", "--listen", "127.0.0.1:0",
               "--data-dir", str(self.data_dir)]
        if self.tokens is not None:
            cmd += ["--tokens", str(self.tokens)]
        self.process = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, text=True, env=child_env(), cwd=str(ROOT)
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("LISTENING "):
            self.process.kill()
            raise RuntimeError(f"pfsd did not start: {line!r}")
        self.address = line.split()[1]
        self._channel = pfs_client.open_channel(self.address)
        return self

    @property
    def api(self) -> pfs_v2_pb2_grpc.APIStub:
        assert self._channel is not None
        return pfs_v2_pb2_grpc.APIStub(self._channel)

    @property
    def auth(self) -> auth_v2_pb2_grpc.APIStub:
        assert self._channel is not None
        return auth_v2_pb2_grpc.APIStub(self._channel)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.process = None

    def kill_process(self) -> None:
        """SIGKILL the server, keeping the channel (calls in flight fail)."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None


@pytest.fixture(scope="module")
def pfsd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pfsd]:
    server = Pfsd(tmp_path_factory.mktemp("pfsd")).start()
    yield server
    server.stop()


@pytest.fixture
def api(pfsd: Pfsd) -> pfs_v2_pb2_grpc.APIStub:
    return pfsd.api


# helpers --------------------------------------------------------------------


def new_repo(api: pfs_v2_pb2_grpc.APIStub, branch: str = "master") -> str:
    """A fresh repo with an empty ``branch``."""
    name = "r" + uuid.uuid4().hex[:12]
    api.CreateRepo(pfs.CreateRepoRequest(repo=refs.repo(name)))
    api.CreateBranch(pfs.CreateBranchRequest(branch=refs.branch(name, branch)))
    return name


def put(
    api: pfs_v2_pb2_grpc.APIStub,
    commit: pfs.Commit,
    files: dict[str, Iterable[bytes] | bytes],
) -> None:
    """One ModifyFile stream overwriting each path with its bytes."""

    def requests() -> Iterator[pfs.ModifyFileRequest]:
        yield pfs_client.set_commit(commit)
        for path, data in files.items():
            yield from pfs_client.put_file(path, [data] if isinstance(data, bytes) else data)

    api.ModifyFile(requests())


def get(api: pfs_v2_pb2_grpc.APIStub, commit: pfs.Commit, path: str, offset: int = 0) -> bytes:
    return b"".join(
        m.value
        for m in api.GetFile(pfs.GetFileRequest(file=refs.file(commit, path), offset=offset))
    )


def pfs_hash(data: bytes) -> bytes:
    """The embedded server's file hash, computed independently."""
    blocks = b"".join(
        hashlib.sha256(data[i : i + MIB]).digest() for i in range(0, len(data), MIB)
    )
    return hashlib.sha256(blocks).digest()


def wait_until(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.05)
