"""SIGKILL of the gateway process itself, with the embedded store inside, mid-write.

The in-process store is the default: the process that answers S3 also holds
the database and the chunk files. Killed at a random moment under racing
writers, then restarted on the same data directory: every write it had
acknowledged is there with its bytes, ETag and metadata, and a write it had
not acknowledged is either absent or whole with its own metadata (its commit
finished just before the kill), never partial and never with the PFS-hash
ETag and no metadata (the commits the kill left open are discarded by the
next writer).
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import threading
import time
from pathlib import Path

import boto3
from botocore.config import Config

from tests.conftest import ACCESS_KEY, SECRET_KEY, RunningGateway, start_gateway

ROUNDS = 6
WRITERS = 4


def _client(gateway: RunningGateway):  # type: ignore[no-untyped-def]
    return boto3.client(
        "s3", endpoint_url=gateway.url, aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY, region_name="us-east-1",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2,
                      read_timeout=10),
    )


def _body(key: str) -> bytes:
    """What the write of ``key`` sends: sizes from empty to a few MiB, derived from the key."""
    rng = random.Random(key)
    size = rng.choice([0, 1, 4096, 100_000, 1_500_000, 3_000_000])
    return rng.randbytes(size)


def _type(key: str) -> str:
    return "application/x-" + key.replace("/", "-")


def test_acknowledged_writes_survive_sigkill_of_the_gateway_and_nothing_is_partial(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    acked: dict[str, tuple[str, str]] = {}  # key -> (md5, version id)
    attempted: set[str] = set()
    lock = threading.Lock()
    rng = random.Random(1234)
    gateway = start_gateway(data)
    _client(gateway).create_bucket(Bucket="master.killed")
    try:
        for round_ in range(ROUNDS):
            s3 = _client(gateway)
            stop = threading.Event()

            def writer(w: int) -> None:
                n = 0
                while not stop.is_set():
                    key = f"r{round_}/w{w}/k{n}"
                    n += 1
                    body = _body(key)
                    with lock:
                        attempted.add(key)
                    try:
                        reply = s3.put_object(
                            Bucket="master.killed", Key=key, Body=body,
                            ContentType=_type(key), Metadata={"key": key},
                        )
                    except Exception:
                        return  # the gateway died under us
                    assert reply["ETag"].strip('"') == hashlib.md5(body).hexdigest()
                    with lock:
                        acked[key] = (hashlib.md5(body).hexdigest(), reply["VersionId"])

            threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.3, 1.5))
            os.kill(gateway.process.pid, signal.SIGKILL)
            gateway.process.wait()
            stop.set()
            for t in threads:
                t.join(30)
            gateway.log_file.unlink()  # start_gateway reads the new port from a fresh log
            gateway = start_gateway(data)

        s3 = _client(gateway)
        assert acked, "no write was acknowledged before the kills"
        for key in sorted(attempted):
            body = _body(key)
            try:
                got = s3.get_object(Bucket="master.killed", Key=key)
            except s3.exceptions.NoSuchKey:
                assert key not in acked, f"acknowledged {key} is gone"
                continue
            content = got["Body"].read()
            assert content == body, f"{key}: {len(content)} bytes, not the {len(body)} sent"
            # Acknowledged or not: visible only with its own metadata.
            assert got["ETag"].strip('"') == hashlib.md5(body).hexdigest(), key
            assert (got["ContentType"], got["Metadata"]) == (_type(key), {"key": key}), key
            if key in acked:
                md5, version = acked[key]
                assert got["ETag"].strip('"') == md5
                at_version = s3.get_object(Bucket="master.killed", Key=key, VersionId=version)
                assert at_version["Body"].read() == body
                assert at_version["Metadata"] == {"key": key}
    finally:
        gateway.stop()
