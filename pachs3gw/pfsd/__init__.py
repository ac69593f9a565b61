"""The embedded PFS server: Pachyderm's ``pfs_v2`` gRPC API over a local durable store.

In process::

    from pachs3gw.pfsd import start_server
    running = start_server("/var/lib/pachs3gw", "unix:/run/pachs3gw/pfsd.sock")
    ...  # dial running.address
    running.stop()

As a child process: ``python -m pachs3gw.pfsd --listen 127.0.0.1:0 --data-dir DIR``
prints ``LISTENING <address>`` once it accepts calls.
"""

from pachs3gw.pfsd._server import (
    MAX_MESSAGE_BYTES,
    NON_BLOCKING_METHODS,
    PfsServer,
    read_tokens,
    start_server,
)
from pachs3gw.pfsd._store import Store

__all__ = [
    "MAX_MESSAGE_BYTES",
    "NON_BLOCKING_METHODS",
    "PfsServer",
    "Store",
    "read_tokens",
    "start_server",
]
