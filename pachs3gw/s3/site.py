"""The twisted.web Site that serves the S3 app with streaming requests."""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.web.resource import IResource
from twisted.web.server import Site

from pachs3gw.s3.body import DEFAULT_HIGH_WATER, DEFAULT_LOW_WATER
from pachs3gw.s3.channel import S3Channel
from pachs3gw.s3.limits import Limits
from pachs3gw.s3.access_log import log_request
from pachs3gw.s3.request import StreamingRequest

__all__ = ["S3Site", "make_site"]


class S3Site(Site):
    """A Site whose requests stream their bodies and log one event each.

    twisted.web's own access log is replaced by :func:`log_request`, which
    also reports requests cut off by the client.  Connections are
    :class:`~pachs3gw.s3.channel.S3Channel` instances
    (HTTP/1.1 only) under ``limits``.
    """

    requestFactory = StreamingRequest
    displayTracebacks = False

    def __init__(
        self,
        resource: IResource,
        *,
        reactor: IReactorTime,
        high_water: int = DEFAULT_HIGH_WATER,
        low_water: int = DEFAULT_LOW_WATER,
        limits: Limits | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(resource, reactor=reactor, **kwargs)
        self.high_water = high_water
        self.low_water = low_water
        self.limits = limits or Limits()

    def protocol(self) -> S3Channel:  # type: ignore[override]
        """A connection (``ServerFactory.buildProtocol`` calls this)."""
        return S3Channel(self.limits)

    def log(self, request: object) -> None:
        """Replaced by the event the request emits when it ends (see ``StreamingRequest``)."""


def make_site(
    resource: IResource | Any,
    reactor: IReactorTime,
    *,
    timeout: float | None = 300,
    high_water: int = DEFAULT_HIGH_WATER,
    low_water: int = DEFAULT_LOW_WATER,
    limits: Limits | None = None,
) -> S3Site:
    """A Site serving ``resource`` with streaming bodies and one log event per request.

    :param resource: an :class:`~pachs3gw.s3.app.S3Server` (its
        ``resource()`` is served) or any ``IResource``.

    :param timeout: idle timeout of a connection, seconds (None: never).
    :param high_water: bytes of request body buffered before the client is
        paused; reading resumes below ``low_water``.
    :param limits: header size and timeouts (:class:`~pachs3gw.s3.limits.Limits`).
    """
    if not IResource.providedBy(resource) and hasattr(resource, "resource"):
        resource = resource.resource()
    return S3Site(
        resource,
        reactor=reactor,
        timeout=timeout,
        high_water=high_water,
        low_water=low_water,
        limits=limits,
    )
