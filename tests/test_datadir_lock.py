"""One owner per data directory: a second store fails at once naming the holder; kill -9 leaves no stale lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, repo_env

SECONDS = 15.0


def start_pfsd(data_dir: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "pachs3gw.pfsd", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir)],
        cwd=ROOT, env=repo_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    return process


def wait_listening(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("LISTENING "), (line, process.stderr.read() if process.stderr else "")
    return line.split()[1]


def test_a_second_pfsd_on_the_same_data_dir_exits_at_once(tmp_path: Path):
    first = start_pfsd(tmp_path / "data")
    try:
        wait_listening(first)
        second = start_pfsd(tmp_path / "data")
        _, err = second.communicate(timeout=SECONDS)
        assert second.returncode == 1
        assert f"in use by process {first.pid}" in err
    finally:
        first.kill()
        first.wait()


def test_a_lock_left_by_kill_9_does_not_block_a_restart(tmp_path: Path):
    first = start_pfsd(tmp_path / "data")
    wait_listening(first)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    # The lock file still names the dead process; the kernel dropped its lock.
    assert (tmp_path / "data" / "lock").read_text().strip() == str(first.pid)
    again = start_pfsd(tmp_path / "data")
    try:
        wait_listening(again)
    finally:
        again.terminate()
        again.wait(10)


def test_two_stores_in_one_process_on_one_dir_are_refused(tmp_path: Path):
    from pachs3gw.datadir import DataDirLocked
    from pachs3gw.pfsd import Store

    store = Store(str(tmp_path / "data"))
    try:
        with pytest.raises(DataDirLocked) as e:
            Store(str(tmp_path / "data"))
        assert e.value.holder == os.getpid()
    finally:
        store.close()
    Store(str(tmp_path / "data")).close()  # closing released it
