"""The backend going away: 503 with Retry-After, then recovery without a restart."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.conftest import ACCESS_KEY, SECRET_KEY, start_gateway


def pfsd_child(gateway_pid: int) -> int:
    with open(f"/proc/{gateway_pid}/task/{gateway_pid}/children") as f:
        for pid in map(int, f.read().split()):
            with open(f"/proc/{pid}/cmdline", "rb") as cmd:
                if b"pachs3gw.pfsd" in cmd.read():
                    return pid
    raise AssertionError("no embedded PFS child")


def test_backend_down_gives_503_then_recovers(tmp_path: Path):
    # The store in a child process, so that it can be stopped on its own.
    gateway = start_gateway(tmp_path / "data", "--pfs-timeout", "2", "--embedded", "child")
    try:
        s3 = boto3.client(
            "s3", endpoint_url=gateway.url, aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY, region_name="us-east-1",
            config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        )
        s3.create_bucket(Bucket="master.resilient")
        s3.put_object(Bucket="master.resilient", Key="k", Body=b"before")
        child = pfsd_child(gateway.process.pid)
        # Stop the embedded server (the supervisor would restart a dead one at
        # once): SIGSTOP makes it unreachable without letting it exit.
        os.kill(child, signal.SIGSTOP)
        try:
            import http.client

            conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=60)
            conn.request("GET", "/master.resilient/k")
            response = conn.getresponse()
            body = response.read()
            assert response.status == 503, body
            assert response.getheader("Retry-After")
            assert b"<Code>ServiceUnavailable</Code>" in body or b"<Code>SlowDown</Code>" in body
        finally:
            os.kill(child, signal.SIGCONT)
        assert s3.get_object(Bucket="master.resilient", Key="k")["Body"].read() == b"before"

        # A killed server is restarted by the gateway's supervisor, data intact.
        os.kill(child, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while True:
            try:
                assert s3.get_object(Bucket="master.resilient", Key="k")["Body"].read() == b"before"
                break
            except ClientError as e:
                assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 503
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        s3.put_object(Bucket="master.resilient", Key="after", Body=b"after")
        restarted = pfsd_child(gateway.process.pid)
        assert restarted != child
    finally:
        gateway.stop()
    # twistd re-raises the signal that stopped it; its child went with it.
    assert gateway.process.returncode in (0, -signal.SIGTERM)
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{restarted}") and not _is_zombie(restarted):
        assert time.monotonic() < deadline, "embedded PFS server outlived the gateway"
        time.sleep(0.1)


def _is_zombie(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[-1].split()[0] == "Z"
