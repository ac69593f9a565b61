"""The S3 layer alone: ``S3Server`` over ``MemoryBackend`` behind the real ``make_site``.

No PFS at all, so what it serves is the ceiling of the HTTP/S3 code every pachs3gw request
goes through (routing, signatures, headers, access log). The bench runs it as the peer
``s3layer`` (``python -m bench.s3layer --port 0``; prints ``LISTENING <port>``).
"""

from __future__ import annotations

import argparse

from twisted.internet import reactor
from twisted.python.threadpool import ThreadPool

from pachs3gw.malloc import tune_malloc
from pachs3gw.s3.app import S3Server
from pachs3gw.s3.site import make_site
from pachs3gw.s3.testing import MemoryAuthenticator, MemoryBackend


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.s3layer")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--access-key", default="benchkey")
    parser.add_argument("--secret-key", default="benchsecret1234")
    args = parser.parse_args()
    tune_malloc()
    pool = ThreadPool(minthreads=2, maxthreads=16, name="s3layer")
    pool.start()
    backend = MemoryBackend(reactor, pool)
    server = S3Server(
        reactor=reactor, pool=pool, backends=backend,
        # Auth off, as pachs3gw by default: the same work per request.
        authenticator=MemoryAuthenticator(None),
    )
    port = reactor.listenTCP(args.port, make_site(server, reactor), interface="127.0.0.1")  # type: ignore[attr-defined]
    print(f"LISTENING {port.getHost().port}", flush=True)
    reactor.addSystemEventTrigger("after", "shutdown", pool.stop)  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
