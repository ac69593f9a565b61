"""The store killed under writers, round after round: a 200 means bytes AND metadata.

The embedded store runs as a child process (``--embedded child``) and is
SIGKILLed at random moments while writers PUT new keys and overwrite a few
hot ones, each write with its own Content-Type and user metadata; the
gateway's supervisor restarts it. A write is a commit that is finished only
after its metadata record is durable, so:

- every acknowledged write reads back by its version ID with its own bytes,
  ETag (the MD5), Content-Type, user metadata and CRC32;
- a write that was not acknowledged is either invisible, or visible whole
  with its own metadata (its commit finished just before the kill) -- never
  with the PFS-hash ETag and no metadata.

(Data commit first, metadata second, as before: 15 of 1,536 acknowledged PUTs
lost their metadata over 5 kills.)
"""

from __future__ import annotations

import base64
import hashlib
import os
import random
import signal
import threading
import time
import zlib
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from tests.conftest import ACCESS_KEY, SECRET_KEY, RunningGateway, start_gateway
from tests.e2e.test_resilience import pfsd_child

ROUNDS = 5
WRITERS = 4
HOT = ["hot/0", "hot/1", "hot/2"]
BUCKET = "master.crashed"


def _client(gateway: RunningGateway) -> Any:
    return boto3.client(
        "s3", endpoint_url=gateway.url, aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY, region_name="us-east-1",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2,
                      read_timeout=15),
    )


def _attempt(name: str) -> dict[str, Any]:
    """What the write called ``name`` sends: derived from its name, so it can be checked later."""
    rng = random.Random(name)
    body = rng.randbytes(rng.choice([1, 100, 5000, 70_000]))
    return {
        "body": body,
        "etag": f'"{hashlib.md5(body).hexdigest()}"',
        "crc32": base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode(),
        "type": f"application/x-{name.replace('/', '-')}",
        "meta": {"attempt": name},
    }


def _wait_until_up(s3: Any, deadline: float) -> None:
    while True:
        try:
            s3.head_bucket(Bucket=BUCKET)
            return
        except (ClientError, BotoCoreError):
            assert time.monotonic() < deadline, "the store did not come back"
            time.sleep(0.2)


def test_store_killed_between_data_and_metadata_never_breaks_an_acknowledged_write(
    tmp_path: Path,
) -> None:
    gateway = start_gateway(tmp_path / "data", "--embedded", "child", "--pfs-timeout", "5")
    acked: dict[str, dict[str, Any]] = {}  # attempt -> key, version
    attempted: dict[str, str] = {}  # attempt -> key
    lock = threading.Lock()
    rng = random.Random(4321)
    try:
        setup = _client(gateway)
        setup.create_bucket(Bucket=BUCKET)
        kills = 0
        for round_ in range(ROUNDS):
            stop = threading.Event()

            def writer(w: int) -> None:
                s3 = _client(gateway)
                wrng = random.Random(f"{round_}/{w}")
                n = 0
                while not stop.is_set():
                    name = f"r{round_}/w{w}/n{n}"
                    n += 1
                    key = wrng.choice(HOT) if wrng.random() < 0.3 else f"new/{name}"
                    sent = _attempt(name)
                    with lock:
                        attempted[name] = key
                    try:
                        reply = s3.put_object(
                            Bucket=BUCKET, Key=key, Body=sent["body"],
                            ContentType=sent["type"], Metadata=sent["meta"],
                        )
                    except (ClientError, BotoCoreError):
                        time.sleep(0.05)  # the store is down: try the next one
                        continue
                    with lock:
                        acked[name] = {"key": key, "version": reply["VersionId"]}

            threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.3, 1.2))
            os.kill(pfsd_child(gateway.process.pid), signal.SIGKILL)
            kills += 1
            time.sleep(0.3)
            _wait_until_up(setup, time.monotonic() + 30)
            time.sleep(0.3)  # writes again, over the commits the kill left open
            stop.set()
            for t in threads:
                t.join(30)
                assert not t.is_alive()

        assert kills == ROUNDS and len(acked) > 50, len(acked)
        s3 = _client(gateway)
        _wait_until_up(s3, time.monotonic() + 30)
        for name, write in sorted(acked.items()):
            sent = _attempt(name)
            got = s3.get_object(
                Bucket=BUCKET, Key=write["key"], VersionId=write["version"], ChecksumMode="ENABLED"
            )
            where = f"acknowledged {name} ({write['key']}@{write['version']})"
            assert got["Body"].read() == sent["body"], where
            assert got["ETag"] == sent["etag"], where
            assert got["ContentType"] == sent["type"], where
            assert got["Metadata"] == sent["meta"], where
            assert got["ChecksumCRC32"] == sent["crc32"], where
        # Whatever is visible now is some attempt's own bytes with its own metadata.
        visible = set()
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            for obj in page.get("Contents", []):
                got = s3.get_object(Bucket=BUCKET, Key=obj["Key"], ChecksumMode="ENABLED")
                name = got["Metadata"].get("attempt")
                assert name is not None and attempted.get(name) == obj["Key"], (obj, got["Metadata"])
                sent = _attempt(name)
                assert got["Body"].read() == sent["body"], name
                assert (got["ETag"], obj["ETag"]) == (sent["etag"], sent["etag"]), name
                assert got["ContentType"] == sent["type"], name
                assert got["ChecksumCRC32"] == sent["crc32"], name
                visible.add(obj["Key"])
        for name, write in acked.items():
            assert write["key"] in visible, f"acknowledged {name} is gone"
    finally:
        gateway.stop()
