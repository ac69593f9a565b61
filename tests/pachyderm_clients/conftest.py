"""Pachyderm's own Python clients, installed from PyPI, driving the embedded server.

python-pachyderm pins protobuf 3.20 and pachyderm-sdk brings betterproto;
neither can share our interpreter (protobuf 7), so each gets a virtualenv of
its own, built here on first use and cached between runs under
``$PACHS3GW_CLIENT_VENVS`` (default ``~/.cache/pachs3gw/pachyderm-clients``;
CI can cache that directory). Building needs the package index and takes
~20 s per client; if it fails the tests FAIL with pip's output: a client
that cannot be installed is a broken test setup, not a reason to skip.

Each client runs ``driver.py`` in its venv; a test sends it Python code and
gets back JSON (see ``driver.py``), so a test reads like the user's code.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest

from tests.conftest import RunningGateway, start_gateway
from tests.pfsd.conftest import Pfsd

HERE = Path(__file__).resolve().parent
DRIVER = HERE / "driver.py"

#: The clients under test: name -> pip requirement.
CLIENTS = {
    "python-pachyderm": "python-pachyderm==7.6.0",
    "pachyderm-sdk": "pachyderm-sdk==2.12.2",
}
#: Upper bound for building one venv (pip from the index; ~20 s measured).
BUILD_TIMEOUT = 600.0
#: Upper bound for one call through a driver.
CALL_TIMEOUT = 60.0


def cache_root() -> Path:
    configured = os.environ.get("PACHS3GW_CLIENT_VENVS")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pachs3gw" / "pachyderm-clients"


def client_python(requirement: str) -> Path:
    """The interpreter of a venv holding ``requirement``, built once and cached.

    A lock file serializes builders (parallel test runs, several checkouts);
    the venv is built aside and renamed into place, with a marker written
    last, so a half-built venv is never used.
    """
    tag = f"py{sys.version_info.major}{sys.version_info.minor}"
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    target = root / f"{requirement.replace('==', '-')}-{tag}"
    marker = target / "pachs3gw-complete"
    python = target / "bin" / "python"
    with open(root / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists() and marker.read_text() == requirement and python.exists():
            return python
        building = root / f"{target.name}.building"
        shutil.rmtree(building, ignore_errors=True)
        shutil.rmtree(target, ignore_errors=True)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        steps = [
            [sys.executable, "-m", "venv", str(building)],
            [str(building / "bin" / "python"), "-m", "pip", "install", "--no-input",
             "--disable-pip-version-check", "-q", requirement],
        ]
        for step in steps:
            try:
                done = subprocess.run(
                    step, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                    timeout=BUILD_TIMEOUT,
                )
            except subprocess.TimeoutExpired as e:
                pytest.fail(f"building a venv for {requirement} timed out: {e}")
            if done.returncode != 0:
                pytest.fail(
                    f"cannot build a venv for {requirement}: {' '.join(step)}\n"
                    f"{done.stdout}\n{done.stderr}"
                )
        building.rename(target)
        # Renaming a venv leaves its scripts' shebangs stale; bin/python
        # itself (a symlink to the base interpreter) is all the driver needs.
        marker.write_text(requirement)
        return python


class ClientError(Exception):
    """A gRPC error the client raised: ``code`` (e.g. "NOT_FOUND") and ``details``."""

    def __init__(self, code: str, details: str) -> None:
        super().__init__(f"{code}: {details}")
        self.code = code
        self.details = details


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"bytes"}:
            return base64.b64decode(value["bytes"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


class Driver:
    """One client in its own venv, driven through ``driver.py``.

    Every call and its outcome are kept in ``calls``; with
    ``PACHS3GW_CLIENT_CALL_LOG=FILE`` they are also appended to FILE.
    """

    def __init__(self, name: str, python: Path, address: str, home: Path) -> None:
        self.name = name
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "PYTHONHOME") and not k.startswith("PACH")}
        env["HOME"] = str(home)  # no ~/.pachyderm/config.json of the user's
        self.process = subprocess.Popen(
            [str(python), str(DRIVER), name, address], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=str(home),
        )
        self.calls: list[tuple[str, str]] = []
        ready = self._read_line()
        assert ready == {"ready": name}, ready

    def _read_line(self) -> Any:
        assert self.process.stdout is not None
        readable, _, _ = select.select([self.process.stdout], [], [], CALL_TIMEOUT)
        line = self.process.stdout.readline() if readable else ""
        if not line:
            self.process.kill()
            _, err = self.process.communicate()
            raise AssertionError(f"{self.name} driver died or hung:\n{err}")
        return json.loads(line)

    def _call(self, kind: str, code: str) -> Any:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({kind: code}) + "\n")
        self.process.stdin.flush()
        reply = self._read_line()
        self._log(code, reply)
        if "rpc_error" in reply:
            raise ClientError(reply["rpc_error"]["code"], reply["rpc_error"]["details"])
        if "exception" in reply:
            raise AssertionError(f"{self.name}: {code}\n{reply['exception']['traceback']}")
        return _decode(reply["value"])

    def _log(self, code: str, reply: dict[str, Any]) -> None:
        if "rpc_error" in reply:
            outcome = f"{reply['rpc_error']['code']}: {reply['rpc_error']['details']}"
        elif "exception" in reply:
            outcome = f"exception {reply['exception']['type']}: {reply['exception']['message']}"
        else:
            outcome = "ok"
        self.calls.append((code, outcome))
        log = os.environ.get("PACHS3GW_CLIENT_CALL_LOG")
        if log:
            with open(log, "a") as f:
                f.write(json.dumps({"client": self.name, "call": code, "result": outcome}) + "\n")

    def run(self, code: str) -> None:
        """Execute statements (e.g. a ``with client.modify_file_client(...)`` block)."""
        self._call("exec", code)

    def eval(self, code: str) -> Any:
        """Evaluate an expression; its value as plain JSON types (bytes decoded)."""
        return self._call("eval", code)

    def error(self, code: str) -> ClientError:
        """Evaluate an expression that must fail with a gRPC error; that error."""
        try:
            self._call("eval", code)
        except ClientError as e:
            return e
        raise AssertionError(f"{self.name}: expected a gRPC error from {code}")

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="module")
def pfsd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pfsd]:
    """``python -m pachs3gw.pfsd --listen 127.0.0.1:0`` over a fresh data dir."""
    server = Pfsd(tmp_path_factory.mktemp("pfsd")).start()
    yield server
    server.stop()


def _driver(name: str, pfsd: Pfsd, tmp: pytest.TempPathFactory) -> Iterator[Driver]:
    driver = Driver(name, client_python(CLIENTS[name]), pfsd.address, tmp.mktemp("home"))
    yield driver
    driver.close()


@pytest.fixture(scope="module")
def pp(pfsd: Pfsd, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Driver]:
    """python-pachyderm 7.6.0 connected to ``pfsd``."""
    yield from _driver("python-pachyderm", pfsd, tmp_path_factory)


@pytest.fixture(scope="module")
def sdk(pfsd: Pfsd, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Driver]:
    """pachyderm-sdk 2.12.2 connected to ``pfsd``."""
    yield from _driver("pachyderm-sdk", pfsd, tmp_path_factory)


@pytest.fixture(scope="module")
def gateway_on_pfsd(pfsd: Pfsd, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    """The real gateway (twistd) in front of ``pfsd`` over gRPC (``--pachd``)."""
    running = start_gateway(tmp_path_factory.mktemp("gw") / "data", "--pachd", pfsd.address)
    yield running
    running.stop()


_counter = 0


def new_name(prefix: str = "r") -> str:
    """A repo name no other test uses."""
    global _counter
    _counter += 1
    return f"{prefix}{os.getpid()}x{_counter}"


def maybe(value: Optional[Any], key: str, default: Any = None) -> Any:
    """``value[key]`` for a message dict, where proto3 leaves defaults out."""
    return default if value is None else value.get(key, default)
