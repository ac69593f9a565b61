"""Wiring: the gateway as a Twisted service, and the public embedding API.

Everything that owns a thread, a socket or a child process starts in
``startService``, not in the constructor: twistd forks (daemonises) after
``makeService``, and threads or grpc channels made before a fork are dead
in the child.

Embedding in an existing Twisted daemon::

    from pachs3gw.service import GatewayConfig, GatewayService
    GatewayService(reactor, GatewayConfig(endpoint="tcp:30600:interface=127.0.0.1",
                                          pachd="pachd:30650")).setServiceParent(app)

or, to mount the S3 resource in a site of your own, :func:`make_resource`.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import attrs
import grpc
from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from twisted.web.resource import IResource
from twisted.web.server import Site

from pachs3gw.gateway import PachydermAuthenticator, PfsBackendFactory
from pachs3gw.pfs import PfsClient, open_channel
from pachs3gw.s3.app import S3Server
from pachs3gw.s3.limits import Limits
from pachs3gw.s3.site import make_site

log = Logger()

#: How long start-up waits for PFS before listening anyway.
BACKEND_WAIT_SECONDS = 15.0


@attrs.frozen
class GatewayConfig:
    """What a gateway needs to know; see ``twistd pachs3gw --help``."""

    endpoint: str = "tcp:30600"
    data_dir: str = "pachs3gw-data"
    #: ``host:port`` of pachd; None starts the embedded server in ``data_dir``.
    pachd: str | None = None
    threads: int = 16
    #: ``child``: supervised process on a unix socket; ``inprocess``: same process.
    embedded: str = "child"
    auth_tokens: str | None = None
    #: Deadline of PFS metadata calls, seconds (uploads/downloads have none).
    pfs_timeout: float = 30.0
    #: Request limits (``pachs3gw.s3.limits.Limits``): headers deadline, body stall window.
    header_timeout: float = 60.0
    body_timeout: float = 60.0
    body_min_bytes: int = 1024


class ThreadPoolService(Service):
    """A thread pool of our own for blocking stream iteration.

    Not the reactor's pool: that one also resolves host names, and a few
    slow uploads would starve it.
    """

    def __init__(self, pool: ThreadPool) -> None:
        self.pool = pool

    def startService(self) -> None:
        super().startService()
        self.pool.start()

    def stopService(self) -> None:
        super().stopService()
        self.pool.stop()


def make_resource(
    reactor: Any, client: PfsClient, pool: ThreadPool
) -> IResource:
    """The S3 API as a twisted.web resource, for a site of your own.

    Uploads stream only when the site uses the streaming request factory:
    prefer :func:`pachs3gw.s3.site.make_site` or :class:`GatewayService`.
    """
    server, _ = _s3_server(reactor, client, pool)
    return server.resource()


def _s3_server(
    reactor: Any, client: PfsClient, pool: ThreadPool
) -> tuple[S3Server, PachydermAuthenticator]:
    authenticator = PachydermAuthenticator(client, reactor)
    server = S3Server(
        reactor=reactor,
        pool=pool,
        backends=PfsBackendFactory(client, reactor, pool, authenticator=authenticator),
        authenticator=authenticator,
    )
    return server, authenticator


def embedded_socket(data_dir: str) -> str:
    return os.path.join(os.path.abspath(data_dir), "pfsd.sock")


def embedded_server_args(config: GatewayConfig, listen: str) -> list[str]:
    args = [
        sys.executable, "-m", "pachs3gw.pfsd",
        "--listen", listen,
        "--data-dir", os.path.abspath(config.data_dir),
    ]
    if config.auth_tokens:
        args += ["--tokens", os.path.abspath(config.auth_tokens)]
    return args


class GatewayService(MultiService):
    """The whole gateway: thread pool, embedded PFS (unless pachd), S3 listener."""

    def __init__(self, reactor: Any, config: GatewayConfig) -> None:
        super().__init__()
        self._reactor = reactor
        self.config = config
        self.pool = ThreadPool(minthreads=2, maxthreads=config.threads, name="pachs3gw")
        ThreadPoolService(self.pool).setServiceParent(self)
        self.channel: grpc.Channel | None = None
        self.port: IListeningPort | None = None
        self.site: Site | None = None
        self._in_process_server: Any = None
        self._started: Deferred[None] | None = None
        if config.pachd is None and config.embedded == "child":
            from twisted.runner.procmon import ProcessMonitor

            os.makedirs(config.data_dir, exist_ok=True)
            socket_path = embedded_socket(config.data_dir)
            monitor = ProcessMonitor(reactor)
            monitor.addProcess(
                "pfsd",
                embedded_server_args(config, "unix:" + socket_path),
                env=_child_env(),
            )
            monitor.setServiceParent(self)

    def _backend_target(self) -> str:
        if self.config.pachd is not None:
            return self.config.pachd
        if self.config.embedded == "child":
            return "unix:" + embedded_socket(self.config.data_dir)
        from pachs3gw.pfsd import read_tokens, start_server

        os.makedirs(self.config.data_dir, exist_ok=True)
        tokens = read_tokens(self.config.auth_tokens) if self.config.auth_tokens else None
        self._in_process_server, address = start_server(
            self.config.data_dir, "unix:" + embedded_socket(self.config.data_dir), tokens
        )
        return str(address)

    def startService(self) -> None:
        super().startService()
        self._started = self._start()

    @inlineCallbacks
    def _start(self) -> Any:
        target = self._backend_target()
        self.channel = open_channel(target)
        yield self._wait_for_backend(self.channel)
        client = PfsClient(self.channel, self._reactor, self.pool, timeout=self.config.pfs_timeout)
        server, authenticator = _s3_server(self._reactor, client, self.pool)
        # Learn before the first request whether the backend has auth on.
        yield authenticator.probe()
        self.site = make_site(
            server,
            self._reactor,
            limits=Limits(
                header_timeout=self.config.header_timeout,
                body_timeout=self.config.body_timeout,
                body_min_bytes=self.config.body_min_bytes,
            ),
        )
        endpoint = serverFromString(self._reactor, self.config.endpoint)
        self.port = yield endpoint.listen(self.site)
        log.info(
            "pachs3gw listening on {address}, PFS at {target}",
            address=self.port.getHost(),
            target=target,
        )

    def _wait_for_backend(self, channel: grpc.Channel) -> Deferred[None]:
        """Give the backend a few seconds to come up before taking requests.

        A backend that stays down does not keep the gateway from listening:
        requests then get 503 SlowDown-style answers until it is back.
        """
        ready = grpc.channel_ready_future(channel)
        waiter: Deferred[None] = Deferred()

        def settle(_: Any) -> None:
            if not waiter.called:
                waiter.callback(None)

        ready.add_done_callback(lambda f: self._reactor.callFromThread(settle, None))
        timeout = self._reactor.callLater(BACKEND_WAIT_SECONDS, settle, None)

        def clean_up(result: Any) -> Any:
            if timeout.active():
                timeout.cancel()
            ready.cancel()
            return result

        return waiter.addBoth(clean_up)

    def when_started(self) -> Deferred[None]:
        """Fires once the S3 port listens (for embedders and tests)."""
        assert self._started is not None, "service not started"
        waiter: Deferred[None] = Deferred()

        def relay(result: Any) -> Any:
            if isinstance(result, Failure):
                waiter.errback(result)
            else:
                waiter.callback(None)
            return result

        self._started.addBoth(relay)
        return waiter

    @inlineCallbacks
    def stopService(self) -> Any:
        if self.port is not None:
            yield self.port.stopListening()
        if self.channel is not None:
            self.channel.close()
        if self._in_process_server is not None:
            self._in_process_server.stop(grace=1)
        yield super().stopService()


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # The child must import this very package, installed or from a checkout.
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [here, env.get("PYTHONPATH")]))
    env.setdefault("MALLOC_ARENA_MAX", "2")
    return env
