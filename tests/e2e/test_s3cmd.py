"""s3cmd with its defaults: it checks that every upload's ETag is the body's MD5."""

from __future__ import annotations

import filecmp
import os
from pathlib import Path

from tests.e2e.clients import s3cmd


def test_put_small_and_large_files_get_them_back(gateway, bucket, tmp_path: Path):
    host = f"127.0.0.1:{gateway.port}"
    small = tmp_path / "small.bin"
    small.write_bytes(os.urandom(1024))
    large = tmp_path / "large.bin"
    large.write_bytes(os.urandom(40 * 1024 * 1024))
    for f in (small, large):
        out = s3cmd(host, tmp_path, "put", str(f), f"s3://{bucket}/s3cmd/{f.name}")
        assert "WARNING: MD5 signatures do not match" not in out.stderr
    for f in (small, large):
        back = tmp_path / ("back-" + f.name)
        s3cmd(host, tmp_path, "get", f"s3://{bucket}/s3cmd/{f.name}", str(back))
        assert filecmp.cmp(f, back, shallow=False)
    listing = s3cmd(host, tmp_path, "ls", f"s3://{bucket}/s3cmd/").stdout
    assert "small.bin" in listing and "large.bin" in listing


def test_sync_and_del(gateway, s3, bucket, tmp_path: Path):
    host = f"127.0.0.1:{gateway.port}"
    tree = tmp_path / "tree"
    for i in range(20):
        f = tree / f"sub{i % 3}" / f"f{i}.txt"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(f"{i}" * (i + 1))
    s3cmd(host, tmp_path, "sync", str(tree) + "/", f"s3://{bucket}/synced/")
    assert s3.list_objects_v2(Bucket=bucket, Prefix="synced/")["KeyCount"] == 20
    s3cmd(host, tmp_path, "del", f"s3://{bucket}/synced/sub0/f0.txt")
    assert s3.list_objects_v2(Bucket=bucket, Prefix="synced/")["KeyCount"] == 19
    s3cmd(host, tmp_path, "del", "--recursive", "--force", f"s3://{bucket}/synced/")
    assert s3.list_objects_v2(Bucket=bucket, Prefix="synced/")["KeyCount"] == 0
