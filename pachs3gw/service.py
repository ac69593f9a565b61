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
from typing import Any, cast

import attrs
import grpc
from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort, IReactorCore, IReactorProcess
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from twisted.web.resource import IResource
from twisted.web.server import Site

from pachs3gw.gateway import PachydermAuthenticator, PfsBackendFactory
from pachs3gw.gateway.commits import ABANDON_AFTER
from pachs3gw.health import OpsRoot
from pachs3gw.metrics import GatewayMetrics, MeteredPfsClient
from pachs3gw.pfs import PfsClient, open_channel
from pachs3gw.s3.app import S3Server
from pachs3gw.s3.http_interfaces import IS3Reactor
from pachs3gw.s3.limits import Limits
from pachs3gw.s3.site import make_site
from pachs3gw.startup import IListeningReactor, log_listening

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
    #: ``inprocess``: the store runs in this process and the gateway calls it
    #: through an in-process channel; ``child``: a supervised process on a
    #: unix socket, called over gRPC.
    embedded: str = "inprocess"
    #: Where the in-process store also serves gRPC for Pachyderm's own tools
    #: (``unix:PATH`` or ``HOST:PORT``); None: ``unix:DATA_DIR/pfsd.sock``.
    pfs_listen: str | None = None
    auth_tokens: str | None = None
    #: Deadline of PFS metadata calls, seconds (uploads/downloads have none).
    pfs_timeout: float = 30.0
    #: Request limits (``pachs3gw.s3.limits.Limits``): headers deadline, body stall window.
    header_timeout: float = 60.0
    body_timeout: float = 60.0
    body_min_bytes: int = 1024
    #: Seconds before another gateway's open write commit counts as abandoned
    #: and is discarded (``pachs3gw.gateway.commits``). This process's own, and
    #: those of dead gateways of this host, are discarded at once whatever it
    #: is; 0 is right when no other gateway writes the same PFS.
    abandon_after: float = ABANDON_AFTER


class IGatewayReactor(IS3Reactor, IReactorCore, IReactorProcess, IListeningReactor):
    """What a whole gateway needs of its reactor (any real reactor has it all).

    The S3 layer's clock and calls from threads, the listening port the
    endpoint string names, a supervised child for ``--embedded child``, and
    (for ``ExitOnStartFailure``) stopping.
    """


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


def make_resource(reactor: IS3Reactor, client: PfsClient, pool: ThreadPool) -> IResource:
    """The S3 API as a twisted.web resource, for a site of your own, at any path.

    Under a plain ``Site`` twisted.web spools each request body (to a
    temporary file when large) before the resource runs; the body then
    streams from there.  :func:`pachs3gw.s3.site.make_site` (or
    :class:`GatewayService`) streams it from the network instead, with
    backpressure and ``100 Continue``.
    """
    server, _ = _s3_server(reactor, client, pool)
    return server.resource()


def _s3_server(
    reactor: IS3Reactor,
    client: PfsClient,
    pool: ThreadPool,
    abandon_after: float = ABANDON_AFTER,
) -> tuple[S3Server, PachydermAuthenticator]:
    authenticator = PachydermAuthenticator(client, reactor)
    server = S3Server(
        reactor=reactor,
        pool=pool,
        backends=PfsBackendFactory(
            client, reactor, pool, authenticator=authenticator, abandon_after=abandon_after
        ),
        authenticator=authenticator,
    )
    return server, authenticator


def embedded_socket(data_dir: str) -> str:
    return os.path.join(os.path.abspath(data_dir), "pfsd.sock")


#: The pfsd child's program: import the very package this module is part of.
_CHILD_MAIN = (
    "import sys; sys.path.insert(0, {here!r}); "
    "from pachs3gw.pfsd.__main__ import main; sys.exit(main())"
).format(here=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def embedded_server_args(config: GatewayConfig, listen: str) -> list[str]:
    args = [
        # Not ``-m``: that puts the working directory first on sys.path, and
        # a gateway started inside a clone would run the clone's pfsd.
        sys.executable, "-c", _CHILD_MAIN,
        "--listen", listen,
        "--data-dir", os.path.abspath(config.data_dir),
    ]
    if config.auth_tokens:
        args += ["--tokens", os.path.abspath(config.auth_tokens)]
    return args


class GatewayService(MultiService):
    """The whole gateway: thread pool, embedded PFS (unless pachd), S3 listener."""

    def __init__(self, reactor: IGatewayReactor, config: GatewayConfig) -> None:
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
        self.metrics: GatewayMetrics | None = None
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

    def _open_channel(self) -> tuple[grpc.Channel, str]:
        """The channel to PFS, and what it reaches (for the log)."""
        if self.config.pachd is not None:
            return open_channel(self.config.pachd), self.config.pachd
        if self.config.embedded == "child":
            target = "unix:" + embedded_socket(self.config.data_dir)
            return open_channel(target), target
        from pachs3gw.pfs.inprocess import InProcessChannel
        from pachs3gw.pfsd import NON_BLOCKING_METHODS, read_tokens, start_server

        os.makedirs(self.config.data_dir, exist_ok=True)
        tokens = read_tokens(self.config.auth_tokens) if self.config.auth_tokens else None
        listen = self.config.pfs_listen or "unix:" + embedded_socket(self.config.data_dir)
        self._in_process_server = start_server(
            self.config.data_dir, listen, tokens, forward_stdlib_logs=True
        )
        channel = InProcessChannel(inline=NON_BLOCKING_METHODS)
        self._in_process_server.serve_on(channel.server)
        return channel, f"in-process store {self.config.data_dir} (gRPC for Pachyderm's tools on {self._in_process_server.address})"

    def startService(self) -> None:
        super().startService()
        self._started = self._start()

    @inlineCallbacks
    def _start(self) -> Any:
        self.channel, target = self._open_channel()
        yield self._wait_for_backend(self.channel)
        client = PfsClient(self.channel, self._reactor, self.pool, timeout=self.config.pfs_timeout)
        # Metrics and health (issue 11): PFS calls timed through a proxy.
        self.metrics = GatewayMetrics()
        self.metrics.start_observing()
        client = cast(PfsClient, MeteredPfsClient(client, self.metrics))
        server, authenticator = _s3_server(
            self._reactor, client, self.pool, self.config.abandon_after
        )
        # Learn before the first request whether the backend has auth on.
        yield authenticator.probe()
        self.site = make_site(
            OpsRoot(server.resource(), client, self._reactor, self.metrics),
            self._reactor,
            limits=Limits(
                header_timeout=self.config.header_timeout,
                body_timeout=self.config.body_timeout,
                body_min_bytes=self.config.body_min_bytes,
            ),
        )
        endpoint = serverFromString(self._reactor, self.config.endpoint)
        self.port = yield endpoint.listen(self.site)
        log_listening(self.config, self.port.getHost(), target, authenticator.enabled)

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
        if self.metrics is not None:
            self.metrics.stop_observing()
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
