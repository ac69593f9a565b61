"""pfsd's stdlib ``logging`` records, forwarded into twisted.logger while it runs in-process.

pfsd's own code logs through twisted.logger. The gRPC server it starts does
not: grpcio logs through stdlib ``logging`` (``grpc._server``,
``grpc._common``: a request it cannot decode, a callback that raised, an
abort with OK). Run standalone (``python -m pachs3gw.pfsd``, also the
gateway's ``--embedded child``, whose stderr the gateway's ProcessMonitor
logs) those reach stderr through stdlib's last-resort handler, which is
fine. Inside the gateway nothing connects stdlib logging to twisted.logger
(twistd does not), so they would be stray stderr text or lost: while an
in-process server runs, :class:`Forwarding` re-emits them as twisted.logger
events, in the record's logger name as namespace, at the matching level,
with the traceback as a failure.

This is the one module that imports stdlib ``logging``, to read records,
never to write them.
"""

from __future__ import annotations

import logging
import threading
from typing import Sequence

from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

#: The stdlib loggers of what pfsd runs: grpcio's (every ``grpc.*`` logger).
PFSD_STDLIB_LOGGERS = ("grpc",)

_LEVELS = (
    (logging.CRITICAL, LogLevel.critical),
    (logging.ERROR, LogLevel.error),
    (logging.WARNING, LogLevel.warn),
    (logging.INFO, LogLevel.info),
)


def _level(levelno: int) -> LogLevel:
    for at_least, level in _LEVELS:
        if levelno >= at_least:
            return level
    return LogLevel.debug


class _ToTwisted(logging.Handler):
    """A stdlib handler that emits each record as a twisted.logger event (any thread)."""

    def __init__(self) -> None:
        super().__init__()
        self._loggers: dict[str, Logger] = {}
        self._emitting = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self._emitting, "active", False):
            # An observer that hands twisted events back to stdlib logging
            # (STDLibLogObserver names its loggers by namespace): no loop.
            return
        self._emitting.active = True
        try:
            log = self._loggers.get(record.name)
            if log is None:
                log = self._loggers[record.name] = Logger(namespace=record.name)
            level = _level(record.levelno)
            message = record.getMessage()
            if record.exc_info is not None and record.exc_info[1] is not None:
                kind, error, traceback = record.exc_info
                log.failure("{message}", Failure(error, kind, traceback), level=level, message=message)
            else:
                log.emit(level, "{message}", message=message)
        except Exception:  # noqa: BLE001 - stdlib's own policy for a failing handler
            self.handleError(record)
        finally:
            self._emitting.active = False


class Forwarding:
    """Records of ``loggers`` (and their children) go to twisted.logger until :meth:`stop`.

    Their levels are left as they are (stdlib's default: WARNING and up), so
    what is forwarded is what stdlib would have printed.
    """

    def __init__(self, loggers: Sequence[str] = PFSD_STDLIB_LOGGERS) -> None:
        self._handler = _ToTwisted()
        self._loggers = [logging.getLogger(name) for name in loggers]
        for logger in self._loggers:
            logger.addHandler(self._handler)

    def stop(self) -> None:
        for logger in self._loggers:
            logger.removeHandler(self._handler)
