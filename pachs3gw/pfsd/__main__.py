"""``python -m pachs3gw.pfsd --listen ADDR --data-dir DIR [--tokens FILE]``.

Prints ``LISTENING <address>`` on stdout once serving (the bound port when
``--listen 127.0.0.1:0``), so a supervisor or test fixture can find it.
Stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import Optional, Sequence

from twisted.logger import Logger

from pachs3gw.datadir import DataDirError, check_data_dir
from pachs3gw.malloc import tune_malloc
from pachs3gw.pfsd._server import read_tokens, start_server

log = Logger()


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pachs3gw.pfsd", description=__doc__)
    parser.add_argument("--listen", required=True, help="HOST:PORT (port 0: any) or unix:PATH")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--tokens", help="file of 'token username' lines; turns auth on")
    parser.add_argument("--workers", type=int, default=64)
    args = parser.parse_args(argv)
    tune_malloc()
    _log_to_stderr()
    tokens = read_tokens(args.tokens) if args.tokens else None
    try:
        check_data_dir(args.data_dir)
        running = start_server(args.data_dir, args.listen, tokens, max_workers=args.workers)
    except DataDirError as e:
        # One line, at once: a second owner must not wait or retry quietly.
        print(f"pfsd: --data-dir {args.data_dir}: {e}", file=sys.stderr, flush=True)
        return 1
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    log.info("pfsd listening on {address} (pid {pid})", address=running.address, pid=os.getpid())
    print(f"LISTENING {running.address}", flush=True)
    while not stop.wait(3600):
        pass
    log.info("pfsd stopping")
    running.stop(grace=2.0)
    log.info("pfsd stopped")
    return 0


def _log_to_stderr() -> None:
    """twisted.logger events (info and up) to stderr: stdout carries ``LISTENING``."""
    from twisted.logger import (
        FilteringLogObserver,
        LogLevel,
        LogLevelFilterPredicate,
        globalLogBeginner,
        textFileLogObserver,
    )

    observer = FilteringLogObserver(
        textFileLogObserver(sys.stderr), [LogLevelFilterPredicate(defaultLogLevel=LogLevel.info)]
    )
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)


if __name__ == "__main__":
    sys.exit(main())
