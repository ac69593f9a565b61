"""Start-up mistakes end the process at once, with one line naming the setting.

A gateway that cannot serve must not look alive: systemd, a container
runtime or a shell user needs a non-zero exit and a sentence such as
``--port tcp:30600: address already in use``.  Two places catch mistakes:

- :func:`check_config` runs in ``makeService``, before twistd daemonises and
  before the reactor runs: the endpoint string (which also loads a TLS key
  and certificate), ``--pachd`` (its form, and that something accepts a
  connection there), the data directory (a writable directory that no live
  process owns) and the tokens file.
- :class:`ExitOnStartFailure` wraps the service: when it fails to start
  anyway (the port is taken, the store cannot open) it logs the one line,
  stops the reactor and makes the process exit 1.

Only ``tap.py`` uses this module; embedders get the failure from
``GatewayService.when_started()``.
"""

from __future__ import annotations

import atexit
import os
import socket
import sys
from typing import Any

from twisted.application.service import MultiService
from twisted.internet.endpoints import serverFromString
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IReactorCore, IReactorSSL, IReactorTCP, IReactorUNIX
from twisted.logger import Logger
from twisted.python.failure import Failure

from pachs3gw.datadir import DataDirError, check_data_dir, probe_lock

__all__ = [
    "ExitOnStartFailure",
    "IListeningReactor",
    "StartupError",
    "check_config",
    "describe_failure",
]

log = Logger()

#: How long ``--pachd`` may take to accept a TCP connection at start-up.
PACHD_CONNECT_SECONDS = 5.0


class IListeningReactor(IReactorTCP, IReactorSSL, IReactorUNIX):
    """What an endpoint string (``--port``: ``tcp:``, ``ssl:``, ``unix:``) may ask of a reactor."""


class StartupError(Exception):
    """A setting the gateway cannot start with."""

    def __init__(self, setting: str, value: object, problem: str) -> None:
        super().__init__(setting, value, problem)
        self.setting = setting
        self.value = value
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.setting} {self.value}: {self.problem}"


def check_config(config: Any, reactor: IListeningReactor) -> None:
    """Raise :class:`StartupError` for the first setting the gateway can't start with.

    :param config: a :class:`pachs3gw.service.GatewayConfig`.
    """
    try:
        # Builds the endpoint without listening; ``ssl:`` reads its key and
        # certificate here, so a missing or broken one is caught now.
        serverFromString(reactor, config.endpoint)
    except Exception as e:
        raise StartupError("--port", config.endpoint, _reason(e)) from None
    kind, _, rest = config.endpoint.partition(":")
    port = rest.partition(":")[0]
    if kind in ("tcp", "tcp6", "ssl") and port.isdigit() and int(port) > 65535:
        raise StartupError("--port", config.endpoint, "port numbers go up to 65535")
    if config.pachd is not None:
        check_pachd(config.pachd)
    else:
        try:
            check_data_dir(config.data_dir)
            probe_lock(config.data_dir)
        except DataDirError as e:
            raise StartupError("--data-dir", config.data_dir, str(e)) from None
    if config.auth_tokens is not None:
        try:
            with open(config.auth_tokens):
                pass
        except OSError as e:
            raise StartupError("--auth-tokens", config.auth_tokens, _reason(e)) from None


def check_pachd(target: str) -> None:
    """``HOST:PORT`` or ``unix:PATH``, and something accepts a connection there.

    A TCP connection, not a gRPC call: no gRPC channel may exist before
    twistd forks.  Whether it is PFS shows when the gateway probes it.
    """
    if target.startswith("unix:"):
        family, address = socket.AF_UNIX, target[len("unix:"):]
        where: Any = address
    else:
        host, sep, port = target.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise StartupError("--pachd", target, "expected HOST:PORT or unix:PATH")
        family, where = socket.AF_INET, (host.strip("[]"), int(port))
    try:
        if family == socket.AF_UNIX:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(PACHD_CONNECT_SECONDS)
                s.connect(where)
        else:
            socket.create_connection(where, timeout=PACHD_CONNECT_SECONDS).close()
    except OSError as e:
        raise StartupError("--pachd", target, f"cannot connect: {_reason(e)}") from None


def describe_failure(failure: Failure, config: Any) -> str:
    """The one line for a start that failed after the reactor started."""
    error = failure.value
    if error is None:
        return "start-up failed"
    if isinstance(error, StartupError):
        return str(error)
    if isinstance(error, CannotListenError):
        return str(StartupError("--port", config.endpoint, _reason(error.socketError or error)))
    if isinstance(error, DataDirError):
        return str(StartupError("--data-dir", config.data_dir, str(error)))
    if isinstance(error, (OverflowError, ValueError)):
        # ``tcp:99999``: the endpoint parsed, the port number is impossible.
        return str(StartupError("--port", config.endpoint, _reason(error)))
    return f"start-up failed: {_reason(error)}"


def log_listening(config: Any, address: Any, target: str, auth_enabled: bool) -> None:
    """The one start-up line an operator reads first, and the warning about open access.

    :param address: the listening port's ``getHost()``.
    :param target: what the PFS channel reaches.
    """
    from pachs3gw import __version__

    if config.pachd is not None:
        backend = f"pachd {config.pachd}"
    else:
        backend = f"embedded {os.path.abspath(config.data_dir)} ({config.embedded}; {target})"
    log.info(
        "pachs3gw listening on {address}: version {version}, backend {backend}, auth {auth}",
        address=address,
        version=__version__,
        backend=backend,
        auth="on (Pachyderm tokens)" if auth_enabled else "off",
        auth_enabled=auth_enabled,
    )
    host = getattr(address, "host", None)
    if not auth_enabled and host is not None and not _is_loopback(host):
        log.warn(
            "auth is off and pachs3gw listens on {host}: anyone who can reach it can read, "
            "write and delete every repo (turn auth on, or listen on 127.0.0.1)",
            host=host,
        )


def _is_loopback(host: str) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return host == "localhost"


class ExitOnStartFailure(MultiService):
    """Runs one service; if it fails to start, logs why and exits 1.

    ``service`` must have ``when_started()`` (a Deferred that fires once it
    serves) and a ``config``.  Exiting: the reactor stops (so child
    processes are stopped and twistd removes its pid file), then the
    interpreter's exit status is forced to 1 — twistd itself would exit 0.
    """

    def __init__(self, reactor: IReactorCore, service: Any) -> None:
        super().__init__()
        self._reactor = reactor
        self._service = service
        service.setServiceParent(self)
        self.failed: str | None = None

    def startService(self) -> None:
        super().startService()
        self._service.when_started().addErrback(self._failed)

    def _failed(self, failure: Failure) -> None:
        self.failed = describe_failure(failure, self._service.config)
        log.critical("pachs3gw cannot start: {problem}", problem=self.failed)
        if failure.check(StartupError, CannotListenError, DataDirError, OverflowError) is None:
            log.failure("start-up failure", failure=failure)
        atexit.register(_exit_status, 1)
        # The start may fail before the reactor runs (a store that cannot
        # open fails inside startService): stop it once it does.
        self._reactor.callWhenRunning(self._reactor.stop)


def _exit_status(code: int) -> None:
    """Exit with ``code`` at interpreter exit (after twistd's own clean-up)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(code)


def _reason(error: BaseException) -> str:
    """A short, single-line reason: ``address already in use``, not a repr."""
    if isinstance(error, OSError) and error.strerror:
        text = error.strerror
        if error.filename:
            text = f"{text}: {error.filename}"
        return text[:1].lower() + text[1:]
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text
