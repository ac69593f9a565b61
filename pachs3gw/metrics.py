"""Prometheus metrics of one gateway, served at ``/_pachs3gw/metrics``.

Nothing in ``s3/`` or ``gateway/`` knows about them; they are read off
seams that exist anyway:

- requests, their latency and their bytes come from the access-log event
  every request emits when it ends (:mod:`pachs3gw.s3.access_log`): an
  observer on its namespace turns the event's fields into samples;
- requests in flight are counted where ``/_pachs3gw/`` is told apart from
  S3 (:class:`pachs3gw.health.OpsRoot`);
- PFS calls are timed by :class:`MeteredPfsClient`, a proxy in front of the
  :class:`~pachs3gw.pfs.PfsClient` the gateway uses.

Each :class:`GatewayMetrics` has a registry of its own, so two gateways in
one process don't count into each other.  Threads: samples are taken on
the reactor thread (prometheus_client is thread-safe anyway).
"""

from __future__ import annotations

import time
from typing import Any, cast

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from twisted.internet.defer import Deferred
from twisted.logger import ILogObserver, globalLogPublisher
from twisted.web.resource import Resource

__all__ = ["GatewayMetrics", "MeteredPfsClient", "MetricsResource"]

#: Request latency buckets, seconds: from a cached HEAD to a multi-GiB transfer.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
#: The access log's namespace (:data:`pachs3gw.s3.access_log.request_log`).
ACCESS_NAMESPACE = "pachs3gw.s3.access"


class GatewayMetrics:
    """The gateway's metrics and the observer that feeds the request ones."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "pachs3gw_requests", "S3 requests answered, by operation and HTTP status "
            "(status 0: the client went away before an answer).",
            ["operation", "status"], registry=r,
        )
        self.request_seconds = Histogram(
            "pachs3gw_request_duration_seconds", "Time from request headers to the end of the response.",
            ["operation"], buckets=LATENCY_BUCKETS, registry=r,
        )
        self.received_bytes = Counter(
            "pachs3gw_received_bytes", "Request body bytes received, by operation.", ["operation"], registry=r
        )
        self.sent_bytes = Counter(
            "pachs3gw_sent_bytes", "Response bytes sent, by operation.", ["operation"], registry=r
        )
        self.in_flight = Gauge(
            "pachs3gw_requests_in_flight", "Requests being served (uploads and downloads under way), by method.",
            ["method"], registry=r,
        )
        self.pfs_seconds = Histogram(
            "pachs3gw_pfs_call_duration_seconds", "PFS calls made by the gateway, by client method.",
            ["method"], buckets=LATENCY_BUCKETS, registry=r,
        )
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self.pfs_errors = Counter(
            "pachs3gw_pfs_call_errors", "PFS calls that failed, by client method and error.",
            ["method", "error"], registry=r,
        )

    # The access-log observer ----------------------------------------------------

    def start_observing(self) -> None:
        # A plain callable is an observer (twisted.logger adapts it).
        globalLogPublisher.addObserver(cast(ILogObserver, self._observe))

    def stop_observing(self) -> None:
        globalLogPublisher.removeObserver(cast(ILogObserver, self._observe))

    def _child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, remembered: the lookup costs more than the update."""
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def _observe(self, event: dict[str, Any]) -> None:
        if event.get("log_namespace") != ACCESS_NAMESPACE or "operation" not in event:
            return
        operation = str(event["operation"])
        self._child(self.requests, operation, str(event.get("status", 0))).inc()
        self._child(self.request_seconds, operation).observe(float(event.get("ms", 0)) / 1000)
        self._child(self.received_bytes, operation).inc(int(event.get("bytes_in") or 0))
        self._child(self.sent_bytes, operation).inc(int(event.get("bytes_out") or 0))

    # PFS calls ------------------------------------------------------------------

    def timed(self, method: str, d: Deferred[Any]) -> Deferred[Any]:
        started = time.monotonic()

        def done(result: Any) -> Any:
            self._child(self.pfs_seconds, method).observe(time.monotonic() - started)
            failure = getattr(result, "value", None) if hasattr(result, "trap") else None
            if failure is not None:
                self._child(self.pfs_errors, method, type(failure).__name__).inc()
            return result

        return d.addBoth(done)


class MeteredPfsClient:
    """A :class:`~pachs3gw.pfs.PfsClient` whose Deferred-returning calls are timed.

    Everything else passes through; :meth:`with_token` clients are metered
    too.  Stream readers (``open_file``) are not timed: a download's time is
    the client's, and the request histogram has it.
    """

    def __init__(self, client: Any, metrics: GatewayMetrics) -> None:
        self._client = client
        self._metrics = metrics

    def with_token(self, token: str | None) -> Any:
        inner = self._client.with_token(token)
        return self if inner is self._client else MeteredPfsClient(inner, self._metrics)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._client, name)
        if name.startswith("_") or not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            result = value(*args, **kwargs)
            if isinstance(result, Deferred):
                return self._metrics.timed(name, result)
            return result

        # Kept: the next lookup finds it without __getattr__ (the client is fixed).
        self.__dict__[name] = call
        return call


class MetricsResource(Resource):
    """``GET /_pachs3gw/metrics``: the Prometheus text format."""

    isLeaf = True

    def __init__(self, metrics: GatewayMetrics) -> None:
        super().__init__()
        self._metrics = metrics

    def render_GET(self, request: Any) -> bytes:
        request.setHeader(b"content-type", CONTENT_TYPE_LATEST.encode("ascii"))
        return generate_latest(self._metrics.registry)
