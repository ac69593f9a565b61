"""A full disk: writes get a retryable 503 SlowDown, reads keep working, an operator frees space.

The gateway's data directory is on a small tmpfs this test mounts (we run as
root in CI; where mounting is not permitted the test is skipped and says
why).  Once uploads have filled it, the rest of the space is taken by a
filler file, so every write really finds the disk full.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.conftest import ACCESS_KEY, ROOT, SECRET_KEY, RunningGateway, repo_env, start_gateway

DISK_MIB = 40

#: The README's "When the disk is full" recipe, run as the operator would.
RECLAIM = """
import sys
from pachs3gw.pfs import open_channel, refs
from pachs3gw.proto import pfs_v2_pb2 as pfs, pfs_v2_pb2_grpc as pfs_grpc
with open_channel("unix:" + sys.argv[1] + "/pfsd.sock") as channel:
    pfs_grpc.APIStub(channel).DeleteRepo(
        pfs.DeleteRepoRequest(repo=refs.repo(sys.argv[2]), force=True))
"""


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_MIB}m", "tmpfs", str(mount_point)],
        capture_output=True, text=True,
    )
    if done.returncode != 0:
        pytest.skip(
            "full-disk test NOT RUN: mounting a tmpfs is not permitted here "
            f"(needs root or CAP_SYS_ADMIN): {done.stderr.strip()}"
        )
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


@pytest.fixture
def full_gateway(small_disk: Path) -> Iterator[RunningGateway]:
    running = start_gateway(small_disk / "data")
    yield running
    running.stop()


def _client(gw: RunningGateway):  # type: ignore[no-untyped-def]
    return boto3.client(
        "s3", endpoint_url=gw.url, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, s3={"addressing_style": "path"}),
    )


def _assert_storage_full(e: ClientError) -> None:
    meta = e.response["ResponseMetadata"]
    assert meta["HTTPStatusCode"] == 503, e.response
    assert e.response["Error"]["Code"] == "SlowDown"
    assert "out of disk space" in e.response["Error"]["Message"]
    assert meta["HTTPHeaders"].get("retry-after")


def _free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def test_full_disk_refuses_writes_retryably_serves_reads_and_is_reclaimed_by_deleting_a_repo(
    full_gateway: RunningGateway, small_disk: Path
) -> None:
    s3 = _client(full_gateway)
    s3.create_bucket(Bucket="master.keep")
    s3.put_object(Bucket="master.keep", Key="k", Body=b"kept", Metadata={"a": "1"})
    s3.create_bucket(Bucket="master.big")

    stored = 0
    with pytest.raises(ClientError) as failed:
        for i in range(DISK_MIB * 2):
            s3.put_object(Bucket="master.big", Key=f"blob{i}", Body=os.urandom(1 << 20))
            stored += 1
    _assert_storage_full(failed.value)
    assert stored > DISK_MIB // 4
    # Take what is left, so metadata writes find the disk full too.
    with open(small_disk / "filler", "wb") as filler:
        try:
            while True:
                filler.write(b"\0" * 65536)
                filler.flush()
        except OSError:
            pass
    assert _free_bytes(small_disk) < 65536

    writes = {
        "put": lambda: s3.put_object(Bucket="master.keep", Key="new", Body=os.urandom(1 << 20)),
        "create_bucket": lambda: s3.create_bucket(Bucket="master.other"),
        "copy": lambda: s3.copy_object(Bucket="master.keep", Key="k2", CopySource="master.keep/k"),
        "multipart": lambda: s3.create_multipart_upload(Bucket="master.keep", Key="mp"),
    }
    for name, write in writes.items():
        try:
            write()
        except ClientError as e:
            _assert_storage_full(e)
        else:
            # A write that needs no new blocks (SQLite reuses its WAL) may
            # pass; a PUT of a fresh MiB cannot.
            assert name != "put", "a 1 MiB PUT succeeded on a full disk"
    for name in ("delete",):
        try:
            s3.delete_object(Bucket="master.keep", Key="blob-none")
        except ClientError as e:
            _assert_storage_full(e)

    # Reads keep working.
    got = s3.get_object(Bucket="master.keep", Key="k")
    assert got["Body"].read() == b"kept" and got["Metadata"] == {"a": "1"}
    assert len(s3.list_objects_v2(Bucket="master.big")["Contents"]) == stored
    assert s3.head_object(Bucket="master.big", Key="blob0")["ContentLength"] == 1 << 20

    # The operator deletes the repo (filler still in place): GC frees its chunks.
    before = _free_bytes(small_disk)
    subprocess.run(
        [sys.executable, "-c", RECLAIM, str(full_gateway.data_dir), "big"],
        check=True, cwd=ROOT, env=repo_env(), timeout=60,
    )
    deadline = time.monotonic() + 20
    while _free_bytes(small_disk) < before + (stored // 2 << 20):
        assert time.monotonic() < deadline, "deleting the repo freed no space"
        time.sleep(0.2)
    s3.put_object(Bucket="master.keep", Key="after", Body=b"room again")
    assert s3.get_object(Bucket="master.keep", Key="after")["Body"].read() == b"room again"
    assert s3.get_object(Bucket="master.keep", Key="k")["Body"].read() == b"kept"
