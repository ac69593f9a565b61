"""Opt-in measurement (``PACHS3GW_BENCH=1``): PUT/HEAD latency, cold vs warm listing."""

import os
import time
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from pachs3gw.gateway import PfsBackendFactory
from pachs3gw.s3.interfaces import ObjectMetadata
from .conftest import Body

@pytest.mark.skipif(not os.environ.get("PACHS3GW_BENCH"), reason="set PACHS3GW_BENCH=1")
@pytest_twisted.inlineCallbacks
def test_measure(factory, client, pool, bucket_name) -> Any:
    backend = factory.backend_for(None)
    yield backend.create_bucket(bucket_name)
    n = 1000
    t = time.perf_counter()
    for i in range(n):
        yield backend.put_object(bucket_name, f"d/k{i:05d}", Body(b"x" * 100), ObjectMetadata(headers={"content-type": "text/plain"}))
    put = (time.perf_counter() - t) / n
    t = time.perf_counter()
    for i in range(200):
        yield backend.head_object(bucket_name, f"d/k{i:05d}", None)
    head = (time.perf_counter() - t) / 200
    cold = PfsBackendFactory(client, reactor, pool)
    t = time.perf_counter()
    page = yield cold.backend_for(None).list_objects(bucket_name, "", "", "", 1000)
    list_cold = time.perf_counter() - t
    t = time.perf_counter()
    page = yield cold.backend_for(None).list_objects(bucket_name, "", "", "", 1000)
    list_warm = time.perf_counter() - t
    t = time.perf_counter()
    page = yield cold.backend_for(None).list_objects(bucket_name, "d/", "/", "", 1000)
    list_warm_dir = time.perf_counter() - t
    cold2 = PfsBackendFactory(client, reactor, pool)
    t = time.perf_counter()
    for i in range(200):
        yield cold2.backend_for(None).head_object(bucket_name, f"d/k{i:05d}", None)
    head_cold = (time.perf_counter() - t) / 200
    print(f"\nPUT {put*1000:.2f} ms; HEAD warm {head*1000:.2f} ms; HEAD cold {head_cold*1000:.2f} ms; "
          f"list 1000 cold {list_cold*1000:.0f} ms ({cold.metadata.fetches} fetches, "
          f"{cold.metadata.index_walks} index walks); warm {list_warm*1000:.0f} ms; "
          f"delimiter warm {list_warm_dir*1000:.0f} ms")
