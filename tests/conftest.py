"""Fixtures shared by the whole suite: the real gateway, started the way users start it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import attrs
import pytest

ROOT = Path(__file__).resolve().parent.parent
ACCESS_KEY = "pachs3gw-test"
#: ``twistd`` as the installed console script would run it, for this interpreter.
TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]
SECRET_KEY = "pachs3gw-test-secret"


def repo_env(**extra: str) -> dict[str, str]:
    """The environment for a child process that must import this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.setdefault("MALLOC_ARENA_MAX", "2")
    env.update(extra)
    return env


@attrs.define
class RunningGateway:
    """A ``twistd -n pachs3gw`` child process listening on an ephemeral port."""

    process: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    log_file: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log_file.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_gateway(data_dir: Path, *extra_args: str, timeout: float = 60.0) -> RunningGateway:
    """Start the gateway through twistd's plugin path and wait until it listens."""
    log_file = data_dir.parent / (data_dir.name + ".log")
    args = [
        *TWISTD, "--nodaemon", "--pidfile=", f"--logfile={log_file}",
        "pachs3gw", "--port", "tcp:0:interface=127.0.0.1", "--data-dir", str(data_dir),
        *extra_args,
    ]
    process = subprocess.Popen(args, cwd=ROOT, env=repo_env(), stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log_file.exists():
            found = re.search(r"pachs3gw listening on .*?port=(\d+)", log_file.read_text(errors="replace"))
            if found:
                return RunningGateway(process, int(found.group(1)), data_dir, log_file)
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    log = log_file.read_text(errors="replace") if log_file.exists() else "(no log)"
    raise RuntimeError(f"gateway did not start:\n{log}")


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    running = start_gateway(tmp_path_factory.mktemp("gateway") / "data")
    yield running
    running.stop()


@pytest.fixture
def s3(gateway: RunningGateway):  # type: ignore[no-untyped-def]
    """A boto3 S3 client with default settings, pointed at the gateway."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=gateway.url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
    )


_bucket_counter = 0


@pytest.fixture
def bucket(s3) -> str:  # type: ignore[no-untyped-def]
    """A new, empty bucket (branch master of a new repo) for one test."""
    global _bucket_counter
    _bucket_counter += 1
    name = f"master.t{os.getpid()}x{_bucket_counter}"
    s3.create_bucket(Bucket=name)
    return name
