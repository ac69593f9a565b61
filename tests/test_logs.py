"""What an operator reads: the start-up line, the open-access warning, access lines, pfsd's life."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import boto3

import pachs3gw
from tests.conftest import ACCESS_KEY, ROOT, SECRET_KEY, repo_env, start_gateway


def test_start_up_line_names_version_address_backend_and_auth_and_access_lines_name_the_client(tmp_path: Path):
    data = tmp_path / "data"
    (data / "chunks" / "tmp").mkdir(parents=True)
    (data / "chunks" / "tmp" / "left-by-a-crash").write_bytes(b"partial")
    gateway = start_gateway(data)
    try:
        s3 = boto3.client("s3", endpoint_url=gateway.url, aws_access_key_id=ACCESS_KEY,
                          aws_secret_access_key=SECRET_KEY, region_name="us-east-1")
        s3.list_buckets()
        log = gateway.log_text()
        start = [line for line in log.splitlines() if "pachs3gw listening on" in line]
        assert len(start) == 1, log
        assert f"version {pachs3gw.__version__}" in start[0]
        assert f"backend embedded {data}" in start[0]
        assert "auth off" in start[0]
        assert "auth is off and pachs3gw listens on" not in log  # loopback only
        assert "recovery removed 1 unfinished chunk file(s)" in log
        access = [line for line in log.splitlines() if "list_buckets 200" in line]
        assert access, log
        assert re.search(r"from=127\.0\.0\.1:\d+", access[-1])
        assert "ua='Boto3/" in access[-1]
    finally:
        gateway.stop()
    assert "pfsd store closed in" in gateway.log_text()


def test_auth_off_on_every_interface_is_warned_about(tmp_path: Path):
    gateway = start_gateway(tmp_path / "data", "--port", "tcp:0")
    try:
        assert "auth is off and pachs3gw listens on 0.0.0.0" in gateway.log_text()
    finally:
        gateway.stop()


def test_the_pfsd_child_logs_into_the_gateway_log(tmp_path: Path):
    gateway = start_gateway(tmp_path / "data", "--embedded", "child")
    try:
        log = gateway.log_text()
        assert "pfsd store open in" in log and "pfsd listening on unix:" in log
        assert "(child;" in [line for line in log.splitlines() if "pachs3gw listening on" in line][0]
    finally:
        gateway.stop()


def test_standalone_pfsd_logs_start_and_stop(tmp_path: Path):
    process = subprocess.Popen(
        [sys.executable, "-m", "pachs3gw.pfsd", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "d")],
        cwd=ROOT, env=repo_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().startswith("LISTENING ")
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=20)
    for expected in ("pfsd store open in", "pfsd listening on 127.0.0.1:", "pfsd stopping",
                     "pfsd store closed in", "pfsd stopped"):
        assert expected in err, err


def test_no_module_logs_through_stdlib_logging():
    """Under twistd nothing connects stdlib ``logging`` to twisted.logger: records would vanish."""
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "pachs3gw").rglob("*.py")
        if re.search(r"^\s*(import logging|from logging import)", path.read_text(), re.M)
    ]
    assert offenders == []


def test_version_is_the_one_setup_py_declares():
    setup = (ROOT / "setup.py").read_text()
    assert f'version="{pachs3gw.__version__}"' in setup
