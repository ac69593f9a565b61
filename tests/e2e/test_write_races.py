"""Writers racing on the same keys: every acknowledged write is its own version, exactly.

Threads of boto3 clients overwrite a few keys of one bucket at once, some of
them with the very same bytes under different headers. Afterwards every
acknowledged PUT is read back by the version ID it was given: its own bytes,
ETag, Content-Type, user metadata and CRC32, and no version ID was given to
two writes of one key. (The version ID used to be read off the branch head
after the write, so a racing writer's commit could be returned, and metadata
was kept per content, so equal bytes shared one record.)
"""

from __future__ import annotations

import hashlib
import random
import threading
from typing import Any

import boto3
from botocore.config import Config

from tests.conftest import ACCESS_KEY, SECRET_KEY, RunningGateway

THREADS = 6
PUTS_PER_THREAD = 20
KEYS = ["hot/a", "hot/b", "hot/c"]


def _client(gateway: RunningGateway) -> Any:
    return boto3.client(
        "s3", endpoint_url=gateway.url, aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY, region_name="us-east-1",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, max_pool_connections=4),
    )


def test_racing_overwrites_each_get_their_own_version_and_metadata(
    gateway: RunningGateway, bucket: str
) -> None:
    acked: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    # Made here: making clients in the threads can take seconds on a loaded machine.
    clients = [_client(gateway) for _ in range(THREADS)]

    def writer(t: int) -> None:
        s3 = clients[t]
        rng = random.Random(t)
        try:
            for n in range(PUTS_PER_THREAD):
                key = rng.choice(KEYS)
                # A third of the writes send one shared body per key: equal
                # bytes, told apart only by their headers.
                shared = rng.random() < 0.34
                body = f"shared body of {key}".encode() if shared else rng.randbytes(rng.choice([0, 10, 3000]))
                content_type = f"application/x-writer-{t}-{n}"
                meta = {"writer": f"{t}-{n}"}
                reply = s3.put_object(
                    Bucket=bucket, Key=key, Body=body, ContentType=content_type, Metadata=meta
                )
                with lock:
                    acked.append(
                        {
                            "key": key,
                            "version": reply["VersionId"],
                            "body": body,
                            "etag": reply["ETag"],
                            "type": content_type,
                            "meta": meta,
                            "crc32": reply["ChecksumCRC32"],
                        }
                    )
        except BaseException as e:  # noqa: BLE001 - reported by the test thread
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors[0]
    assert len(acked) == THREADS * PUTS_PER_THREAD

    by_key: dict[str, dict[str, dict[str, Any]]] = {}
    for write in acked:
        versions = by_key.setdefault(write["key"], {})
        assert write["version"] not in versions, (
            f"version {write['version']} of {write['key']} was given to two writes"
        )
        versions[write["version"]] = write
        assert write["etag"].strip('"') == hashlib.md5(write["body"]).hexdigest()

    s3 = _client(gateway)
    for write in acked:
        got = s3.get_object(
            Bucket=bucket, Key=write["key"], VersionId=write["version"], ChecksumMode="ENABLED"
        )
        where = f"{write['key']}@{write['version']} ({write['meta']['writer']})"
        assert got["Body"].read() == write["body"], where
        assert got["ETag"] == write["etag"], where
        assert got["ContentType"] == write["type"], where
        assert got["Metadata"] == write["meta"], where
        assert got["ChecksumCRC32"] == write["crc32"], where
        assert got["VersionId"] == write["version"], where
    # The current object of each key is one of its acknowledged writes, whole,
    # and the version ID it comes with reads the same back.
    writers = {w["meta"]["writer"]: w for w in acked}
    for key in by_key:
        got = s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        write = writers[got["Metadata"]["writer"]]
        assert write["key"] == key
        body = got["Body"].read()
        assert (body, got["ETag"], got["ContentType"]) == (write["body"], write["etag"], write["type"])
        assert got["ChecksumCRC32"] == write["crc32"]
        again = s3.get_object(Bucket=bucket, Key=key, VersionId=got["VersionId"])
        assert (again["Body"].read(), again["Metadata"]) == (body, write["meta"])
    # The key's history lists acknowledged writes only, with their ETags, and
    # every write of new bytes. (A write of the bytes the key already holds
    # changes nothing in PFS, so it is no commit of the key's history: it is
    # read back above by its version ID, with its own headers.)
    listed: dict[str, set[str]] = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix="hot/"):
        for v in page.get("Versions", []):
            listed.setdefault(v["Key"], set()).add(v["VersionId"])
            assert v["ETag"] == by_key[v["Key"]][v["VersionId"]]["etag"]
    for key, versions in by_key.items():
        unique = {v for v, w in versions.items() if len(w["body"]) >= 10 and not w["body"].startswith(b"shared")}
        assert unique <= listed[key], unique - listed[key]
