"""minio-py with its defaults: multipart at 5 MiB, ListObjectsV2, batch removal."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from minio import Minio
from minio.deleteobjects import DeleteObject

from tests.conftest import ACCESS_KEY, SECRET_KEY


def client(gateway) -> Minio:  # type: ignore[no-untyped-def]
    return Minio(f"127.0.0.1:{gateway.port}", access_key=ACCESS_KEY, secret_key=SECRET_KEY, secure=False)


def test_fput_20_mib_then_get(gateway, bucket, tmp_path: Path):
    source = tmp_path / "m.bin"
    data = os.urandom(20 * 1024 * 1024)
    source.write_bytes(data)
    minio = client(gateway)
    minio.fput_object(bucket, "minio/m.bin", str(source))
    response = minio.get_object(bucket, "minio/m.bin")
    try:
        assert hashlib.md5(response.read()).digest() == hashlib.md5(data).digest()
    finally:
        response.close()
        response.release_conn()


def test_list_recursive_and_remove_objects(gateway, s3, bucket):
    minio = client(gateway)
    keys = [f"tree/{i % 4}/obj{i}" for i in range(40)]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    listed = sorted(o.object_name for o in minio.list_objects(bucket, prefix="tree/", recursive=True))
    assert listed == sorted(keys)
    top = sorted(o.object_name for o in minio.list_objects(bucket, prefix="tree/"))
    assert top == ["tree/0/", "tree/1/", "tree/2/", "tree/3/"]
    errors = list(minio.remove_objects(bucket, [DeleteObject(k) for k in keys]))
    assert errors == []
    assert list(minio.list_objects(bucket, prefix="tree/", recursive=True)) == []


def test_bucket_exists_and_location(gateway, bucket):
    minio = client(gateway)
    assert minio.bucket_exists(bucket)
    assert not minio.bucket_exists("master.minionothere")
