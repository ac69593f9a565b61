"""``versionpb_v2.API/GetVersion``: the Pachyderm version this server speaks.

pachctl and pachyderm-sdk call it first (``python -m pachyderm_sdk`` checks a
connection with nothing else). The answer is the pachd release whose
protocol the project's ``.proto`` subset follows (PFS_PROTOCOL.md: field
numbers as in 2.12, the release of pachyderm-sdk 2.12.2), in the shape pachd
gives it, so clients that compare versions see a server they know.
"""

from __future__ import annotations

import platform
import sys
from typing import Any

from google.protobuf import empty_pb2

from pachs3gw.proto import versionpb_v2_pb2 as version
from pachs3gw.proto import versionpb_v2_pb2_grpc as version_grpc

#: (major, minor, micro) of the pachd release the protocol subset follows.
PACHYDERM_VERSION = (2, 12, 2)


def _platform() -> str:
    """Go's ``GOOS/GOARCH`` spelling, which pachd reports."""
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return f"{sys.platform}/{arch}"


class VersionServicer(version_grpc.APIServicer):
    """Answers without authentication, as pachd does (clients call it before logging in)."""

    def GetVersion(self, request: empty_pb2.Empty, context: Any) -> version.Version:
        major, minor, micro = PACHYDERM_VERSION
        return version.Version(
            major=major,
            minor=minor,
            micro=micro,
            additional="",
            go_version="",
            platform=_platform(),
        )
