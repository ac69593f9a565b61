"""Running the command-line clients (AWS CLI, s3cmd) the way a user would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ACCESS_KEY, SECRET_KEY


def _tool(name: str) -> str:
    """The console script installed next to this interpreter (or on PATH)."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed: pip install '.[test]'")
    return found


def aws(
    endpoint: str,
    *args: str,
    check: bool = True,
    timeout: float = 300,
    access: str = ACCESS_KEY,
    secret: str = SECRET_KEY,
    ca_bundle: str | None = None,
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if ca_bundle:
        env["AWS_CA_BUNDLE"] = ca_bundle
    env.update(
        AWS_ACCESS_KEY_ID=access,
        AWS_SECRET_ACCESS_KEY=secret,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    result = subprocess.run(
        [_tool("aws"), "--endpoint-url", endpoint, *args],
        env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"aws {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def s3cmd(
    host_port: str,
    config_dir: Path,
    *args: str,
    check: bool = True,
    timeout: float = 300,
    access: str = ACCESS_KEY,
    secret: str = SECRET_KEY,
    ca_certs: str | None = None,
) -> subprocess.CompletedProcess[str]:
    config = config_dir / "s3cfg"
    if not config.exists():
        config.write_text(
            "[default]\n"
            f"access_key = {access}\n"
            f"secret_key = {secret}\n"
            f"host_base = {host_port}\n"
            f"host_bucket = {host_port}\n"
            f"use_https = {bool(ca_certs)}\n"
            f"ca_certs_file = {ca_certs or ''}\n"
            "signature_v2 = False\n"
            "bucket_location = us-east-1\n"
        )
    result = subprocess.run(
        [sys.executable, _tool("s3cmd"), "-c", str(config), *args],
        capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"s3cmd {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result
