"""The AWS CLI with default settings: multipart at 8 MiB, ListObjectsV2, batch deletes."""

from __future__ import annotations

import filecmp
import os
from pathlib import Path

from tests.e2e.clients import aws


def test_cp_64_mib_up_and_down_uses_multipart(gateway, s3, bucket, tmp_path: Path):
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(64 * 1024 * 1024))
    aws(gateway.url, "s3", "cp", str(source), f"s3://{bucket}/big.bin")
    head = s3.head_object(Bucket=bucket, Key="big.bin")
    assert head["ContentLength"] == source.stat().st_size
    assert head["ETag"].strip('"').endswith("-8")  # 8 MiB parts
    back = tmp_path / "back.bin"
    aws(gateway.url, "s3", "cp", f"s3://{bucket}/big.bin", str(back))
    assert filecmp.cmp(source, back, shallow=False)


def test_sync_tree_both_ways_then_ls_and_rm(gateway, s3, bucket, tmp_path: Path):
    tree = tmp_path / "tree"
    for i in range(300):
        f = tree / f"d{i % 7}" / f"file-{i}.txt"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(f"content {i}\n" * (i % 5 + 1))
    aws(gateway.url, "s3", "sync", str(tree), f"s3://{bucket}/tree")
    listing = aws(gateway.url, "s3", "ls", "--recursive", f"s3://{bucket}/tree/").stdout
    assert len(listing.strip().splitlines()) == 300
    # A second sync has nothing to do.
    again = aws(gateway.url, "s3", "sync", str(tree), f"s3://{bucket}/tree").stdout
    assert "upload:" not in again
    down = tmp_path / "down"
    aws(gateway.url, "s3", "sync", f"s3://{bucket}/tree", str(down))
    comparison = filecmp.dircmp(tree, down)
    assert not comparison.left_only and not comparison.right_only
    for sub in comparison.subdirs.values():
        assert not sub.diff_files and not sub.left_only and not sub.right_only
    aws(gateway.url, "s3", "rm", "--recursive", f"s3://{bucket}/tree")
    assert s3.list_objects_v2(Bucket=bucket, Prefix="tree/")["KeyCount"] == 0


def test_ls_recursive_pages_over_2500_keys(gateway, s3, bucket):
    from concurrent.futures import ThreadPoolExecutor

    keys = [f"k/{i // 100:02d}/{i:05d}" for i in range(2500)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket=bucket, Key=k, Body=b"."), keys))
    out = aws(gateway.url, "s3", "ls", "--recursive", f"s3://{bucket}").stdout
    listed = [line.split()[-1] for line in out.strip().splitlines()]
    assert listed == keys


def test_mb_and_rb(gateway, s3):
    aws(gateway.url, "s3", "mb", "s3://master.clibucket")
    assert "master.clibucket" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3.put_object(Bucket="master.clibucket", Key="x", Body=b"x")
    aws(gateway.url, "s3", "rb", "--force", "s3://master.clibucket")
    assert "master.clibucket" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
