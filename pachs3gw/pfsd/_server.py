"""Starting the embedded server: in this process or as ``python -m pachs3gw.pfsd``."""

from __future__ import annotations

from concurrent import futures
from typing import Any, Iterator, Mapping, Optional

import grpc

from pachs3gw.pfsd._logs import Forwarding
from pachs3gw.pfsd._servicer import (
    CANCEL_SETTLE_SECONDS,
    AuthServicer,
    Authenticator,
    PfsServicer,
)
from pachs3gw.pfsd._store import Store
from pachs3gw.pfsd._probes import VersionServicer, health_handler
from pachs3gw.proto import auth_v2_pb2_grpc, pfs_v2_pb2_grpc, versionpb_v2_pb2_grpc

#: pachd's MaxMsgSize, both ways.
MAX_MESSAGE_BYTES = 20 * 1024 * 1024

SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.so_reuseport", 0),
]


#: Methods that only read the store and never wait: an in-process channel
#: may run them on the caller's thread (readers never wait for writers: WAL
#: mode, one connection per thread). Not InspectCommit: it can wait for a
#: commit to finish.
NON_BLOCKING_METHODS = frozenset(
    {
        "/pfs_v2.API/InspectFile",
        "/pfs_v2.API/InspectBranch",
        "/pfs_v2.API/InspectRepo",
        "/pfs_v2.API/InspectProject",
        "/pfs_v2.API/GetFile",
        "/pfs_v2.API/ListFile",
        "/pfs_v2.API/WalkFile",
        "/pfs_v2.API/GlobFile",
        "/pfs_v2.API/ListBranch",
        "/pfs_v2.API/ListRepo",
        "/pfs_v2.API/ListProject",
        "/pfs_v2.API/DiffFile",
        "/auth_v2.API/WhoAmI",
        "/versionpb_v2.API/GetVersion",
    }
)


class Services:
    """The embedded server's servicers, registered on one or more servers."""

    def __init__(self, store: Store, authenticator: Authenticator, cancel_settle: float) -> None:
        self.pfs = PfsServicer(store, authenticator, cancel_settle)
        self.auth = AuthServicer(authenticator)
        self.version = VersionServicer()

    def add_to(self, server: Any) -> None:
        """Register on ``server``: a ``grpc.Server`` or anything with its
        registration methods, such as :class:`pachs3gw.pfs.inprocess.InProcessServer`."""
        pfs_v2_pb2_grpc.add_APIServicer_to_server(self.pfs, server)
        auth_v2_pb2_grpc.add_APIServicer_to_server(self.auth, server)
        versionpb_v2_pb2_grpc.add_APIServicer_to_server(self.version, server)
        server.add_generic_rpc_handlers((health_handler(),))


class PfsServer:
    """A running embedded PFS server.

    Unpacks as ``(grpc_server, address)``; ``address`` is what a client
    dials: ``127.0.0.1:PORT`` (the bound port when 0 was asked) or
    ``unix:PATH``.
    """

    def __init__(
        self,
        server: grpc.Server,
        address: str,
        store: Store,
        services: Services,
        forwarding: Optional[Forwarding] = None,
    ) -> None:
        self.server = server
        self.address = address
        self.store = store
        self.services = services
        self._forwarding = forwarding

    def serve_on(self, server: Any) -> None:
        """Serve the same servicers through another server too (an in-process channel's)."""
        self.services.add_to(server)

    def __iter__(self) -> Iterator[object]:
        return iter((self.server, self.address))

    def stop(self, grace: Optional[float] = 1.0) -> None:
        """Stop serving (in-flight calls get ``grace`` seconds) and close the store."""
        self.server.stop(grace).wait()
        self.store.close()
        if self._forwarding is not None:
            self._forwarding.stop()


def read_tokens(path: str) -> dict[str, str]:
    """A tokens file: lines ``token username``; blank lines and '#' comments skipped."""
    tokens = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            token, _, user = line.partition(" ")
            tokens[token] = user.strip() or token
    return tokens


def start_server(
    data_dir: str,
    listen: str,
    tokens: Optional[Mapping[str, str]] = None,
    max_workers: int = 64,
    cancel_settle: float = CANCEL_SETTLE_SECONDS,
    forward_stdlib_logs: bool = False,
) -> PfsServer:
    """Open the store in ``data_dir`` and serve it on ``listen``.

    ``listen`` is ``HOST:PORT`` (port 0 = any free port) or ``unix:PATH``.
    ``tokens`` maps token -> username and turns auth on. Each streaming call
    holds a worker thread for its duration, hence the generous pool.
    ``cancel_settle``: see ``_servicer.CANCEL_SETTLE_SECONDS``.
    ``forward_stdlib_logs``: in a process that logs through twisted.logger
    (the gateway), have the gRPC server's stdlib ``logging`` records
    forwarded there while it runs (``_logs``).
    """
    store = Store(data_dir)
    forwarding: Optional[Forwarding] = None
    try:
        if forward_stdlib_logs:
            forwarding = Forwarding()
        authenticator = Authenticator(tokens)
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="pfsd"),
            options=SERVER_OPTIONS,
            maximum_concurrent_rpcs=None,
        )
        services = Services(store, authenticator, cancel_settle)
        services.add_to(server)
        port = server.add_insecure_port(listen)
        if not listen.startswith("unix:"):
            if port == 0:
                raise OSError(f"cannot listen on {listen}")
            host = listen.rsplit(":", 1)[0]
            address = f"{host}:{port}"
        else:
            address = listen
        server.start()
    except BaseException:
        store.close()
        if forwarding is not None:
            forwarding.stop()
        raise
    return PfsServer(server, address, store, services, forwarding)
