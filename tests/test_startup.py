"""Start-up mistakes: a one-line error naming the setting, a non-zero exit, within seconds.

Each case runs ``twistd -n pachs3gw`` as a user would; none may hang or
start serving.  The data-dir lock cases run two owners on one directory.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import ROOT, TWISTD, repo_env, start_gateway

#: A mistake must end the process well within this.
SECONDS = 15.0


def run_twistd(tmp_path: Path, *args: str) -> tuple[int, str, float]:
    """Run the gateway to its end; (exit status, everything it printed or logged, seconds)."""
    log_file = tmp_path / "gw.log"
    started = time.monotonic()
    done = subprocess.run(
        [*TWISTD, "--nodaemon", "--pidfile=", f"--logfile={log_file}", "pachs3gw", *args],
        cwd=ROOT, env=repo_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=SECONDS * 3,
    )
    elapsed = time.monotonic() - started
    logged = log_file.read_text(errors="replace") if log_file.exists() else ""
    return done.returncode, done.stdout + done.stderr + logged, elapsed


def error_line(output: str, setting: str) -> str:
    lines = [line for line in output.splitlines() if setting in line]
    assert lines, f"no line names {setting}:\n{output}"
    return lines[-1]


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_port_that_is_not_an_endpoint_string_is_an_error(tmp_path: Path):
    rc, output, elapsed = run_twistd(tmp_path, "--port", "abc", "--data-dir", str(tmp_path / "d"))
    assert rc != 0 and elapsed < SECONDS
    assert "Unknown endpoint type" in error_line(output, "--port abc")


def test_a_port_number_out_of_range_is_an_error(tmp_path: Path):
    rc, output, elapsed = run_twistd(tmp_path, "--port", "99999", "--data-dir", str(tmp_path / "d"))
    assert rc != 0 and elapsed < SECONDS
    assert "65535" in error_line(output, "--port tcp:99999")


def test_a_port_in_use_ends_the_gateway_with_the_reason(tmp_path: Path, busy_port: int):
    endpoint = f"tcp:{busy_port}:interface=127.0.0.1"
    rc, output, elapsed = run_twistd(tmp_path, "--port", endpoint, "--data-dir", str(tmp_path / "d"))
    assert rc == 1 and elapsed < SECONDS
    assert "address already in use" in error_line(output, f"--port {endpoint}")
    assert "Traceback" not in output


def test_a_port_in_use_with_the_child_store_stops_the_child_too(tmp_path: Path, busy_port: int):
    endpoint = f"tcp:{busy_port}:interface=127.0.0.1"
    rc, output, elapsed = run_twistd(
        tmp_path, "--port", endpoint, "--data-dir", str(tmp_path / "d"), "--embedded", "child"
    )
    assert rc == 1 and elapsed < SECONDS
    assert "address already in use" in error_line(output, "--port")
    # The child let go of the store: a new owner can take it at once.
    from pachs3gw.datadir import DataDirLocked, lock_data_dir

    deadline = time.monotonic() + 10
    while True:
        try:
            lock_data_dir(str(tmp_path / "d")).release()
            break
        except DataDirLocked:
            assert time.monotonic() < deadline, "the child outlived the gateway"
            time.sleep(0.2)


def test_a_data_dir_that_is_a_file_is_an_error(tmp_path: Path):
    rc, output, elapsed = run_twistd(tmp_path, "--data-dir", "/etc/hostname", "--port", "tcp:0")
    assert rc != 0 and elapsed < SECONDS
    assert "not a directory" in error_line(output, "--data-dir /etc/hostname")
    assert "Traceback" not in output


def test_a_data_dir_that_cannot_be_created_is_an_error(tmp_path: Path):
    rc, output, elapsed = run_twistd(tmp_path, "--data-dir", "/proc/no/such/dir", "--port", "tcp:0")
    assert rc != 0 and elapsed < SECONDS
    assert "cannot create" in error_line(output, "--data-dir /proc/no/such/dir")
    assert "Traceback" not in output


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_an_unwritable_data_dir_is_an_error(tmp_path: Path):  # pragma: no cover - not as root
    locked = tmp_path / "ro"
    locked.mkdir(mode=0o500)
    rc, output, _ = run_twistd(tmp_path, "--data-dir", str(locked), "--port", "tcp:0")
    assert rc != 0
    assert "not writable" in error_line(output, "--data-dir")


def test_an_unknown_option_is_a_usage_error(tmp_path: Path):
    rc, output, elapsed = run_twistd(tmp_path, "--prot", "1")
    assert rc != 0 and elapsed < SECONDS
    assert "--prot not recognized" in output.splitlines()[-1]


def test_an_unknown_tap_conf_key_is_a_usage_error(tmp_path: Path):
    conf = tmp_path / "tap.conf"
    conf.write_text("[pachs3gw]\nprot = 1\n")
    rc, output, elapsed = run_twistd(tmp_path, "--config", str(conf))
    assert rc != 0 and elapsed < SECONDS
    assert "unknown settings" in output.splitlines()[-1] and "prot" in output.splitlines()[-1]


def test_an_unreachable_pachd_is_an_error(tmp_path: Path, closed_port: int):
    target = f"127.0.0.1:{closed_port}"
    rc, output, elapsed = run_twistd(tmp_path, "--pachd", target, "--port", "tcp:0")
    assert rc != 0 and elapsed < SECONDS
    assert "cannot connect" in error_line(output, f"--pachd {target}")


def test_a_pachd_without_a_port_is_an_error(tmp_path: Path):
    rc, output, _ = run_twistd(tmp_path, "--pachd", "pachd.example", "--port", "tcp:0")
    assert rc != 0
    assert "HOST:PORT" in error_line(output, "--pachd pachd.example")


def test_a_missing_tls_key_is_an_error(tmp_path: Path):
    endpoint = f"ssl:0:privateKey={tmp_path}/key.pem:certKey={tmp_path}/cert.pem"
    rc, output, elapsed = run_twistd(tmp_path, "--port", endpoint, "--data-dir", str(tmp_path / "d"))
    assert rc != 0 and elapsed < SECONDS
    assert "no such file" in error_line(output, "--port ssl:0")


def test_a_missing_tokens_file_is_an_error(tmp_path: Path):
    rc, output, _ = run_twistd(
        tmp_path, "--auth-tokens", str(tmp_path / "tokens"), "--data-dir", str(tmp_path / "d")
    )
    assert rc != 0
    assert "no such file" in error_line(output, "--auth-tokens")


# One owner per data directory ---------------------------------------------------


def test_a_second_gateway_on_the_same_data_dir_fails_naming_the_first(tmp_path: Path):
    first = start_gateway(tmp_path / "data")
    try:
        rc, output, elapsed = run_twistd(
            tmp_path, "--data-dir", str(tmp_path / "data"), "--port", "tcp:0:interface=127.0.0.1"
        )
        assert rc != 0 and elapsed < SECONDS
        line = error_line(output, "--data-dir")
        assert f"in use by process {first.process.pid}" in line
        # The first one is untouched.
        import urllib.request

        with urllib.request.urlopen(first.url + "/") as response:
            assert response.status == 200
    finally:
        first.stop()
