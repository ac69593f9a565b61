"""Liveness, readiness (it checks the store) and Prometheus metrics, as operators use them."""

from __future__ import annotations

import os
import re
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.conftest import ACCESS_KEY, SECRET_KEY, start_gateway
from tests.e2e.test_resilience import pfsd_child


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def sample(metrics: str, name: str, **labels: str) -> float:
    """The value of one sample in the Prometheus text format (0 if absent)."""
    for line in metrics.splitlines():
        found = re.match(r"^([a-z0-9_]+)(?:\{(.*)\})? (\S+)$", line)
        if not found or found.group(1) != name:
            continue
        have = dict(re.findall(r'([a-z_]+)="([^"]*)"', found.group(2) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            return float(found.group(3))
    return 0.0


def test_health_and_metrics_follow_requests_and_the_store(tmp_path: Path):
    gateway = start_gateway(tmp_path / "data", "--embedded", "child", "--pfs-timeout", "2")
    try:
        ops = gateway.url + "/_pachs3gw"
        assert fetch(ops + "/health/live") == (200, "live\n")
        assert fetch(ops + "/health/ready") == (200, "ready\n")
        assert fetch(ops + "/nothing") == (404, "not found\n")
        assert fetch(ops + "/health/live/") == (200, "live\n")
        post = urllib.request.Request(ops + "/health/live", data=b"", method="POST")
        try:
            urllib.request.urlopen(post, timeout=30)
            raise AssertionError("POST /_pachs3gw/health/live answered 2xx")
        except urllib.error.HTTPError as e:
            assert e.code == 405

        s3 = boto3.client("s3", endpoint_url=gateway.url, aws_access_key_id=ACCESS_KEY,
                          aws_secret_access_key=SECRET_KEY, region_name="us-east-1",
                          config=Config(retries={"max_attempts": 1, "mode": "standard"}))
        body = os.urandom(100_000)
        s3.create_bucket(Bucket="master.metered")
        s3.put_object(Bucket="master.metered", Key="k", Body=body)
        assert s3.get_object(Bucket="master.metered", Key="k")["Body"].read() == body
        try:
            s3.head_object(Bucket="master.metered", Key="missing")
        except ClientError:
            pass

        status, metrics = fetch(ops + "/metrics")
        assert status == 200
        assert sample(metrics, "pachs3gw_requests_total", operation="put_object", status="200") == 1
        assert sample(metrics, "pachs3gw_requests_total", operation="get_object", status="200") == 1
        assert sample(metrics, "pachs3gw_requests_total", operation="head_object", status="404") == 1
        assert sample(metrics, "pachs3gw_received_bytes_total", operation="put_object") >= len(body)
        assert sample(metrics, "pachs3gw_sent_bytes_total", operation="get_object") >= len(body)
        assert sample(metrics, "pachs3gw_request_duration_seconds_count", operation="put_object") == 1
        assert sample(metrics, "pachs3gw_request_duration_seconds_bucket", operation="put_object", le="+Inf") == 1
        assert sample(metrics, "pachs3gw_pfs_call_duration_seconds_count", method="modify_file") >= 1
        assert "pachs3gw_requests_in_flight" in metrics
        # /_pachs3gw/ itself is not counted, and no S3 request runs now.
        assert sample(metrics, "pachs3gw_requests_in_flight", method="GET") == 0

        # The store stops answering: not ready (live still), PFS errors counted.
        child = pfsd_child(gateway.process.pid)
        os.kill(child, signal.SIGSTOP)
        try:
            started = time.monotonic()
            status, text = fetch(ops + "/health/ready")
            assert status == 503 and "not ready" in text
            assert time.monotonic() - started < 10
            assert fetch(ops + "/health/live")[0] == 200
            try:
                s3.get_object(Bucket="master.metered", Key="k")
            except ClientError as e:
                assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 503
            metrics = fetch(ops + "/metrics")[1]
            errors = [line for line in metrics.splitlines()
                      if line.startswith("pachs3gw_pfs_call_errors_total{") and not line.endswith(" 0.0")]
            assert errors, metrics
            assert sample(metrics, "pachs3gw_requests_total", operation="get_object", status="503") >= 1
        finally:
            os.kill(child, signal.SIGCONT)
        assert fetch(ops + "/health/ready")[0] == 200
        assert "GET /_pachs3gw/health/ready ops 200" in gateway.log_text()
    finally:
        gateway.stop()
