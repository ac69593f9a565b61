"""One set of test bodies, run against every backend: the contract of IBackend.

As Klein runs one test body against its memory and SQL session stores, each
test here gets ``backend`` three times: the public fake
(:class:`~pachs3gw.s3.testing.MemoryBackend`) and the real
:class:`~pachs3gw.gateway.PfsBackend` over the embedded store, through both of
its transports (gRPC to a child process, and the in-process channel). What
an embedder's tests learn from the fake then holds for the real thing.

Bucket names are ``master.r<hex>`` (a name both accept), fresh per test;
the PFS store is shared by the session, so a test never assumes it is alone
(``list_buckets`` is checked for inclusion).
"""

from __future__ import annotations

import uuid
from typing import Any, Iterator

import pytest
from twisted.internet import reactor
from twisted.python.threadpool import ThreadPool

from pachs3gw.gateway import PfsBackendFactory
from pachs3gw.pfs.client import PfsClient, open_channel
from pachs3gw.pfs.inprocess import InProcessChannel
from pachs3gw.pfsd import NON_BLOCKING_METHODS, start_server
from pachs3gw.s3.interfaces import IBackend
from pachs3gw.s3.testing import MemoryBackend

from tests.gateway.conftest import Body, pfsd_address, pool  # noqa: F401 (fixtures)

#: Small parts keep multipart tests fast; both backends get the same rule.
MIN_PART_SIZE = 64 * 1024

__all__ = ["Body", "MIN_PART_SIZE"]


@pytest.fixture(scope="session")
def grpc_client(pfsd_address: str, pool: ThreadPool) -> Iterator[PfsClient]:  # noqa: F811
    channel: Any = open_channel(pfsd_address)
    yield PfsClient(channel, reactor, pool)
    channel.close()


@pytest.fixture(scope="session")
def inprocess_client(
    tmp_path_factory: pytest.TempPathFactory, pool: ThreadPool  # noqa: F811
) -> Iterator[PfsClient]:
    data = tmp_path_factory.mktemp("contract-inprocess")
    running = start_server(str(data), f"unix:{data}/pfsd.sock")
    channel = InProcessChannel(inline=NON_BLOCKING_METHODS)
    running.serve_on(channel.server)
    yield PfsClient(channel, reactor, pool)
    channel.close()
    running.stop()


@pytest.fixture(params=["memory", "pfs-grpc", "pfs-inprocess"])
def backend(request: pytest.FixtureRequest, pool: ThreadPool) -> IBackend:  # noqa: F811
    """The backend under contract (a fresh fake, or a real one over the shared store)."""
    if request.param == "memory":
        return MemoryBackend(reactor, pool, min_part_size=MIN_PART_SIZE)
    client: PfsClient = request.getfixturevalue(request.param.split("-")[1] + "_client")
    factory = PfsBackendFactory(client, reactor, pool)
    factory.multipart.min_part_size = MIN_PART_SIZE
    return factory.backend_for(None)


@pytest.fixture
def bucket_name() -> str:
    """A fresh bucket name both backends accept (not created)."""
    return "master.r" + uuid.uuid4().hex[:12]


@pytest.fixture
def bucket(backend: IBackend, bucket_name: str) -> Iterator[str]:
    """A created, empty bucket."""
    import pytest_twisted

    pytest_twisted.blockon(backend.create_bucket(bucket_name))
    yield bucket_name


def is_fake(backend: IBackend) -> bool:
    return isinstance(backend, MemoryBackend)
