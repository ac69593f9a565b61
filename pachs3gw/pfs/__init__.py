"""The PFS client: Pachyderm's pfs_v2 gRPC API as Deferreds and blocking streams."""

from pachs3gw.pfs.client import (
    CHANNEL_OPTIONS,
    MAX_MESSAGE_BYTES,
    FileReader,
    PfsClient,
    open_channel,
)

__all__ = ["CHANNEL_OPTIONS", "MAX_MESSAGE_BYTES", "FileReader", "PfsClient", "open_channel"]
