"""What clients ask before any work: the server's version and health.

* ``versionpb_v2.API/GetVersion``: pachctl and pachyderm-sdk call it first
  (``python -m pachyderm_sdk`` checks a connection with nothing else). The
  answer is the pachd release whose protocol the project's ``.proto``
  subset follows (PFS_PROTOCOL.md: field numbers as in 2.12, the release of
  pachyderm-sdk 2.12.2), in the shape pachd gives it.
* ``grpc.health.v1.Health/Check``: gRPC's standard health service, which
  pachd serves and python-pachyderm's ``health_check()`` calls. SERVING
  whenever the server answers (the store is opened before it listens).

Both answer without a token, as pachd does: clients call them before
logging in.
"""

from __future__ import annotations

import platform
import sys
from typing import Any

import grpc
from google.protobuf import empty_pb2

from pachs3gw.proto import health_v1_pb2 as health
from pachs3gw.proto import versionpb_v2_pb2 as version
from pachs3gw.proto import versionpb_v2_pb2_grpc as version_grpc

#: (major, minor, micro) of the pachd release the protocol subset follows.
PACHYDERM_VERSION = (2, 12, 2)
HEALTH_SERVICE = "grpc.health.v1.Health"


def _platform() -> str:
    """Go's ``GOOS/GOARCH`` spelling, which pachd reports."""
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return f"{sys.platform}/{arch}"


class VersionServicer(version_grpc.APIServicer):
    """``versionpb_v2.API``."""

    def GetVersion(self, request: empty_pb2.Empty, context: Any) -> version.Version:
        major, minor, micro = PACHYDERM_VERSION
        return version.Version(major=major, minor=minor, micro=micro, platform=_platform())


def _check(request: health.HealthCheckRequest, context: Any) -> health.HealthCheckResponse:
    if request.service:
        # grpc's own health servicer answers NOT_FOUND for a service it was not told of.
        context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
    return health.HealthCheckResponse(status=health.HealthCheckResponse.SERVING)


def health_handler() -> grpc.GenericRpcHandler:
    """``grpc.health.v1.Health/Check`` (Watch is left out: no client here uses it)."""
    return grpc.method_handlers_generic_handler(
        HEALTH_SERVICE,
        {
            "Check": grpc.unary_unary_rpc_method_handler(
                _check,
                request_deserializer=health.HealthCheckRequest.FromString,
                response_serializer=health.HealthCheckResponse.SerializeToString,
            )
        },
    )
