"""Liveness, readiness and metrics next to the S3 API, under ``/_pachs3gw/``.

``_pachs3gw`` can never be a bucket (S3 bucket names start with a letter or
a digit), so these paths take nothing from S3:

- ``GET /_pachs3gw/health/live``: 200 while the process serves HTTP at all
  (for a supervisor that restarts a hung process);
- ``GET /_pachs3gw/health/ready``: 200 once the store answers, 503 with the
  reason while it does not (for a load balancer that routes around a
  gateway whose PFS is down);
- ``GET /_pachs3gw/metrics``: Prometheus (:mod:`pachs3gw.metrics`).

Threads: reactor thread only.
"""

from __future__ import annotations

from typing import Any

from klein import Klein
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET
from werkzeug.exceptions import NotFound  # Klein's routing raises werkzeug's errors

from pachs3gw.metrics import GatewayMetrics, MetricsResource
from pachs3gw.pfs import errors as pfs_errors

__all__ = ["OpsRoot", "PREFIX"]

PREFIX = b"/_pachs3gw/"
#: Longest a readiness check waits for the store, seconds.
READY_TIMEOUT = 5.0


class OpsRoot(Resource):
    """Serves ``/_pachs3gw/...`` with a Klein app and hands every other request to S3.

    The prefix is checked first, so S3 requests never pay for Klein's
    routing (werkzeug's URL map; see ``pachs3gw/s3/app.py``).
    """

    isLeaf = True
    _ops = Klein()

    def __init__(
        self, s3: IResource, client: Any, reactor: IReactorTime, metrics: GatewayMetrics
    ) -> None:
        super().__init__()
        self._s3 = s3
        self._metrics = metrics
        self._live = _Live()
        self._ready = _Ready(client, reactor)
        self._metrics_page = MetricsResource(metrics)
        self._ops_resource = self._ops.resource()

    def render(self, request: Any) -> Any:
        path = request.uri.partition(b"?")[0]
        if path.startswith(PREFIX):
            stats = getattr(request, "stats", None)
            if stats is not None:  # the access line names what was asked
                name = path[len(PREFIX):].rstrip(b"/")
                stats.bucket, stats.key = "_pachs3gw", name.decode("latin-1")
                stats.operation = "ops"
            return self._ops_resource.render(request)
        method = request.method.decode("latin-1") if isinstance(request.method, bytes) else str(request.method)
        gauge = self._metrics.in_flight.labels(method)
        gauge.inc()
        request.notifyFinish().addBoth(lambda _: gauge.dec())
        return self._s3.render(request)

    @_ops.route("/_pachs3gw/health/live", strict_slashes=False)
    def _serve_live(self, request: Any) -> IResource:
        return self._live

    @_ops.route("/_pachs3gw/health/ready", strict_slashes=False)
    def _serve_ready(self, request: Any) -> IResource:
        return self._ready

    @_ops.route("/_pachs3gw/metrics", strict_slashes=False)
    def _serve_metrics(self, request: Any) -> IResource:
        return self._metrics_page

    @_ops.handle_errors(NotFound)
    def _not_found(self, request: Any, failure: Any) -> bytes:
        request.setResponseCode(404)
        request.setHeader(b"content-type", b"text/plain")
        return b"not found\n"


class _Live(Resource):
    isLeaf = True

    def render_GET(self, request: Any) -> bytes:
        request.setHeader(b"content-type", b"text/plain")
        return b"live\n"

    render_HEAD = render_GET


class _Ready(Resource):
    """Ready when the store answers a WhoAmI, whatever it answers (auth on or off)."""

    isLeaf = True

    def __init__(self, client: Any, reactor: IReactorTime) -> None:
        super().__init__()
        self._client = client
        self._reactor = reactor

    def render_GET(self, request: Any) -> Any:
        request.setHeader(b"content-type", b"text/plain")
        check: Deferred[Any] = self._client.with_token(None).who_am_i()
        check.addTimeout(READY_TIMEOUT, self._reactor)

        def answer(status: int, text: str) -> None:
            if request.finished or getattr(request, "disconnected", False):
                return
            request.setResponseCode(status)
            request.write(text.encode("utf-8"))
            request.finish()

        def failed(failure: Any) -> None:
            error = failure.value
            if isinstance(error, (pfs_errors.AuthNotActivated, pfs_errors.Unauthenticated,
                                  pfs_errors.PermissionDenied)):
                answer(200, "ready\n")  # it answered: auth is just on (or off)
            else:
                answer(503, f"not ready: the store does not answer ({type(error).__name__})\n")

        check.addCallbacks(lambda _: answer(200, "ready\n"), failed)
        return NOT_DONE_YET

    render_HEAD = render_GET
