"""What an operator reads: the start-up line, the open-access warning, access lines, pfsd's life."""

from __future__ import annotations

import logging
import re
import signal
import subprocess
import sys
from pathlib import Path

import boto3
import grpc
import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.threads import deferToThread
from twisted.logger import LogLevel, globalLogPublisher

import pachs3gw
from pachs3gw.service import GatewayConfig, GatewayService
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
    """Under twistd nothing connects stdlib ``logging`` to twisted.logger: records would vanish.

    The one exception reads records instead: ``pfsd/_logs.py`` forwards the
    in-process gRPC server's (grpcio's) into twisted.logger.
    """
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "pachs3gw").rglob("*.py")
        if re.search(r"^\s*(import logging|from logging import)", path.read_text(), re.M)
    ]
    assert offenders == ["pachs3gw/pfsd/_logs.py"]


def test_version_is_the_one_setup_py_declares():
    setup = (ROOT / "setup.py").read_text()
    assert f'version="{pachs3gw.__version__}"' in setup


def _undecodable_request(address: str) -> grpc.StatusCode:
    """*Worker thread.* A request pfsd's gRPC server cannot decode: grpcio logs it (stdlib)."""
    channel = grpc.insecure_channel(address)
    try:
        call = channel.unary_unary("/pfs_v2.API/InspectRepo")
        with pytest.raises(grpc.RpcError) as raised:
            call(b"\xff\xff\xff", timeout=10)
        return raised.value.code()
    finally:
        channel.close()


def _grpc_events(events: list[dict]) -> list[dict]:
    return [e for e in events if str(e.get("log_namespace", "")).startswith("grpc")]


@pytest_twisted.inlineCallbacks
def test_the_in_process_store_forwards_grpcs_stdlib_records_into_twisted_logger(tmp_path: Path):
    service = GatewayService(reactor, GatewayConfig(
        endpoint="tcp:0:interface=127.0.0.1", data_dir=str(tmp_path / "data"), threads=4,
    ))
    events: list[dict] = []
    globalLogPublisher.addObserver(events.append)
    try:
        service.startService()
        try:
            yield service.when_started()
            address = "unix:" + str(tmp_path / "data" / "pfsd.sock")
            code = yield deferToThread(_undecodable_request, address)
            assert code == grpc.StatusCode.INTERNAL
            forwarded = _grpc_events(events)
            assert [(e["log_namespace"], e["log_level"], e["message"]) for e in forwarded] == [
                ("grpc._common", LogLevel.error, "Exception deserializing message!")
            ]
            assert forwarded[0]["log_failure"].check(Exception)  # the traceback came along
        finally:
            yield service.stopService()
        before = len(events)
        logging.getLogger("grpc._server").error("after the store stopped")
        assert _grpc_events(events[before:]) == []  # the handler went with the server
    finally:
        globalLogPublisher.removeObserver(events.append)


def test_a_standalone_start_leaves_stdlib_logging_alone(tmp_path: Path):
    from pachs3gw.pfsd import start_server

    handlers = list(logging.getLogger("grpc").handlers)
    events: list[dict] = []
    globalLogPublisher.addObserver(events.append)
    running = start_server(str(tmp_path / "data"), "127.0.0.1:0")
    try:
        assert logging.getLogger("grpc").handlers == handlers
        assert _undecodable_request(running.address) == grpc.StatusCode.INTERNAL
        assert _grpc_events(events) == []
    finally:
        running.stop()
        globalLogPublisher.removeObserver(events.append)


def test_forwarded_records_keep_level_and_an_observer_logging_back_to_stdlib_does_not_loop():
    from pachs3gw.pfsd._logs import Forwarding

    name = "pachs3gw-test-forwarding"
    events: list[dict] = []

    def observer(event: dict) -> None:
        if event.get("log_namespace") == name:
            events.append(event)
            # As STDLibLogObserver would: back to the stdlib logger of that name.
            logging.getLogger(name).error("echo of %s", event["message"])

    forwarding = Forwarding([name])
    globalLogPublisher.addObserver(observer)
    try:
        logging.getLogger(name).warning("disk %s", "slow")
    finally:
        globalLogPublisher.removeObserver(observer)
        forwarding.stop()
    assert [(e["log_level"], e["message"]) for e in events] == [(LogLevel.warn, "disk slow")]
