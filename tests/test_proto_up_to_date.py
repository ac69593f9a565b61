"""The checked-in generated proto modules are what grpcio-tools makes of the .proto files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROTOS = [
    "pachs3gw/proto/pfs_v2.proto", "pachs3gw/proto/auth_v2.proto", "pachs3gw/proto/versionpb_v2.proto",
    "pachs3gw/proto/health_v1.proto",
]
GENERATED = [
    "pfs_v2_pb2.py", "pfs_v2_pb2.pyi", "pfs_v2_pb2_grpc.py",
    "auth_v2_pb2.py", "auth_v2_pb2.pyi", "auth_v2_pb2_grpc.py",
    "versionpb_v2_pb2.py", "versionpb_v2_pb2.pyi", "versionpb_v2_pb2_grpc.py",
    "health_v1_pb2.py", "health_v1_pb2.pyi", "health_v1_pb2_grpc.py",
]


def test_generated_modules_match_the_proto_files(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools")
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I.", f"--python_out={tmp_path}",
         f"--grpc_python_out={tmp_path}", f"--pyi_out={tmp_path}", *PROTOS],
        cwd=ROOT, check=True,
    )
    stale = [
        name for name in GENERATED
        if (tmp_path / "pachs3gw/proto" / name).read_bytes()
        != (ROOT / "pachs3gw/proto" / name).read_bytes()
    ]
    assert not stale, (
        f"regenerate {stale}: python -m grpc_tools.protoc -I. --python_out=. "
        "--grpc_python_out=. --pyi_out=. " + " ".join(PROTOS)
    )
