"""PutObject, GetObject, HeadObject, DeleteObject and listings through boto3 and raw HTTP."""

from __future__ import annotations

import hashlib

import pytest_twisted
from botocore.exceptions import ClientError

from tests.s3http.conftest import S3Harness


def _bucket(h: S3Harness, name: str = "bucket") -> str:
    h.backend.seed_bucket(name)
    return name


@pytest_twisted.ensureDeferred
async def test_put_then_get_returns_same_bytes_and_md5_etag(s3h: S3Harness) -> None:
    b = _bucket(s3h)
    data = b"hello world" * 1000

    def go() -> tuple[dict, dict, bytes]:
        c = s3h.boto()
        put = c.put_object(Bucket=b, Key="dir/a.txt", Body=data, ContentType="text/plain")
        got = c.get_object(Bucket=b, Key="dir/a.txt")
        return put, got, got["Body"].read()

    put, got, body = await s3h.in_thread(go)
    md5 = hashlib.md5(data).hexdigest()
    assert put["ETag"] == f'"{md5}"'
    assert put["VersionId"]
    assert body == data
    assert got["ETag"] == f'"{md5}"'
    assert got["ContentType"] == "text/plain"
    assert got["ContentLength"] == len(data)
    assert s3h.backend.objects(b) == {"dir/a.txt": data}


@pytest_twisted.ensureDeferred
async def test_head_object_returns_metadata_without_body(s3h: S3Harness) -> None:
    b = _bucket(s3h)

    def go() -> dict:
        c = s3h.boto()
        c.put_object(
            Bucket=b,
            Key="k",
            Body=b"abc",
            Metadata={"color": "blue"},
            ContentDisposition="attachment",
            CacheControl="no-cache",
        )
        return c.head_object(Bucket=b, Key="k")

    head = await s3h.in_thread(go)
    assert head["ContentLength"] == 3
    assert head["Metadata"]["color"] == "blue"
    assert head["ContentDisposition"] == "attachment"
    assert head["CacheControl"] == "no-cache"
    assert head["AcceptRanges"] == "bytes"
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"]


@pytest_twisted.ensureDeferred
async def test_delete_object_then_get_is_no_such_key(s3h: S3Harness) -> None:
    b = _bucket(s3h)

    def go() -> tuple[dict, str]:
        c = s3h.boto()
        c.put_object(Bucket=b, Key="k", Body=b"abc")
        d = c.delete_object(Bucket=b, Key="k")
        try:
            c.get_object(Bucket=b, Key="k")
        except ClientError as e:
            return d, e.response["Error"]["Code"]
        return d, ""

    d, code = await s3h.in_thread(go)
    assert d["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert code == "NoSuchKey"
    assert s3h.backend.objects(b) == {}


@pytest_twisted.ensureDeferred
async def test_list_objects_v2_pages_with_continuation_token(s3h: S3Harness) -> None:
    b = _bucket(s3h)
    keys = [f"k{i:03d}" for i in range(25)] + ["dir/x", "dir/y"]

    def go() -> tuple[list[str], list[str], int]:
        c = s3h.boto()
        for k in keys:
            c.put_object(Bucket=b, Key=k, Body=k.encode())
        seen: list[str] = []
        pages = 0
        for page in c.get_paginator("list_objects_v2").paginate(
            Bucket=b, PaginationConfig={"PageSize": 10}
        ):
            pages += 1
            seen += [o["Key"] for o in page.get("Contents", [])]
        r = c.list_objects_v2(Bucket=b, Delimiter="/")
        prefixes = [p["Prefix"] for p in r.get("CommonPrefixes", [])]
        return seen, prefixes, pages

    seen, prefixes, pages = await s3h.in_thread(go)
    assert seen == sorted(keys)
    assert pages == 3
    assert prefixes == ["dir/"]


@pytest_twisted.ensureDeferred
async def test_list_objects_v1_paging_and_delimiter(s3h: S3Harness) -> None:
    b = _bucket(s3h)

    def go() -> list[str]:
        c = s3h.boto()
        for k in ["a", "b/1", "b/2", "c", "d"]:
            c.put_object(Bucket=b, Key=k, Body=b"x")
        out: list[str] = []
        for page in c.get_paginator("list_objects").paginate(
            Bucket=b, Delimiter="/", PaginationConfig={"PageSize": 2}
        ):
            out += [o["Key"] for o in page.get("Contents", [])]
            out += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        return out

    assert sorted(await s3h.in_thread(go)) == ["a", "b/", "c", "d"]


@pytest_twisted.ensureDeferred
async def test_buckets_create_head_list_delete(s3h: S3Harness) -> None:
    def go() -> tuple[list[str], str, str]:
        c = s3h.boto()
        c.create_bucket(Bucket="one")
        c.create_bucket(Bucket="two")
        c.head_bucket(Bucket="one")
        names = [x["Name"] for x in c.list_buckets()["Buckets"]]
        try:
            c.create_bucket(Bucket="one")
        except ClientError as e:
            again = e.response["Error"]["Code"]
        c.put_object(Bucket="two", Key="k", Body=b"x")
        try:
            c.delete_bucket(Bucket="two")
        except ClientError as e:
            not_empty = e.response["Error"]["Code"]
        c.delete_bucket(Bucket="one")
        return names, again, not_empty

    names, again, not_empty = await s3h.in_thread(go)
    assert names == ["one", "two"]
    assert again == "BucketAlreadyOwnedByYou"
    assert not_empty == "BucketNotEmpty"
    assert sorted(s3h.backend.buckets) == ["two"]
