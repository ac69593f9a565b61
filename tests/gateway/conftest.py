"""Fixtures: the real embedded PFS server, and backends over it.

Tests drive :class:`PfsBackend` directly (no HTTP) under pytest-twisted's
one reactor, through the same client the gateway uses, over both of its
transports: gRPC to the server as a child process (as to pachd), and the
in-process channel to a store in this process (the embedded default).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Iterator

import attrs
import pytest
from twisted.internet import reactor
from twisted.internet.defer import succeed
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from pachs3gw.gateway import PfsBackend, PfsBackendFactory
from pachs3gw.pfs.client import PfsClient, open_channel
from pachs3gw.pfs.inprocess import InProcessChannel
from pachs3gw.pfsd import NON_BLOCKING_METHODS, start_server
from pachs3gw.s3.interfaces import IBodySource

ROOT = Path(__file__).resolve().parents[2]
MIB = 1 << 20


@pytest.fixture(scope="session")
def pfsd_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("gateway-pfsd")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    process = subprocess.Popen(
        [sys.executable, "-m", "pachs3gw.pfsd", "--listen", "127.0.0.1:0", "--data-dir", str(data)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=str(ROOT),
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("LISTENING "):
        process.kill()
        raise RuntimeError(f"pfsd did not start: {line!r}")
    yield line.split()[1]
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def pool() -> Iterator[ThreadPool]:
    threads = ThreadPool(minthreads=2, maxthreads=16, name="gateway-tests")
    threads.start()
    yield threads
    threads.stop()


@pytest.fixture(scope="session", params=["grpc", "inprocess"])
def client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, pool: ThreadPool
) -> Iterator[PfsClient]:
    if request.param == "grpc":
        channel: Any = open_channel(request.getfixturevalue("pfsd_address"))
        yield PfsClient(channel, reactor, pool)
        channel.close()
        return
    data = tmp_path_factory.mktemp("gateway-inprocess")
    running = start_server(str(data), f"unix:{data}/pfsd.sock")
    channel = InProcessChannel(inline=NON_BLOCKING_METHODS)
    running.serve_on(channel.server)
    yield PfsClient(channel, reactor, pool)
    channel.close()
    running.stop()


@pytest.fixture
def factory(client: PfsClient, pool: ThreadPool) -> PfsBackendFactory:
    return PfsBackendFactory(client, reactor, pool)


@pytest.fixture
def backend(factory: PfsBackendFactory) -> PfsBackend:
    return factory.backend_for(None)  # type: ignore[return-value]


@pytest.fixture
def bucket_name() -> str:
    """A fresh ``master.<repo>`` name (not created)."""
    return "master.r" + uuid.uuid4().hex[:12]


@implementer(IBodySource)
@attrs.define
class Body:
    """An in-memory request body, optionally failing halfway (like a bad digest)."""

    data: bytes
    chunk: int = 64 * 1024
    fail_with: Exception | None = None
    #: As the HTTP layer sets it from Content-Length (None: unknown, e.g. chunked).
    expected_length: int | None = attrs.field(
        default=attrs.Factory(lambda self: len(self.data), takes_self=True)
    )

    def chunks(self) -> Iterator[bytes]:
        for start in range(0, len(self.data), self.chunk):
            if self.fail_with is not None and start >= len(self.data) // 2:
                raise self.fail_with
            yield self.data[start : start + self.chunk]
        if self.fail_with is not None:
            raise self.fail_with

    def md5_hex(self) -> str:
        return hashlib.md5(self.data).hexdigest()

    def checksums(self) -> dict[str, str]:
        return {}

    def arrived(self) -> Any:
        """In memory from the start (a failing one fails once read, as on the wire)."""
        return succeed(True)
