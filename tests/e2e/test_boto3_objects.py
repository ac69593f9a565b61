"""The core object operations, driven by boto3 with its default settings."""

from __future__ import annotations

import hashlib
import os
import time

import pytest
from botocore.exceptions import ClientError


def error_code(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    return excinfo.value.response["Error"]["Code"]


def status(excinfo: pytest.ExceptionInfo[ClientError]) -> int:
    return excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_put_then_get_returns_same_bytes_and_md5_etag(s3, bucket):
    body = os.urandom(100_000)
    put = s3.put_object(Bucket=bucket, Key="dir/a.bin", Body=body)
    md5 = hashlib.md5(body).hexdigest()
    assert put["ETag"] == f'"{md5}"'
    assert len(put["VersionId"]) == 32
    got = s3.get_object(Bucket=bucket, Key="dir/a.bin")
    assert got["Body"].read() == body
    assert got["ETag"] == f'"{md5}"'
    assert got["ContentLength"] == len(body)
    assert got["VersionId"] == put["VersionId"]
    head = s3.head_object(Bucket=bucket, Key="dir/a.bin")
    assert head["ETag"] == f'"{md5}"' and head["ContentLength"] == len(body)


def test_empty_object_round_trips(s3, bucket):
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    got = s3.get_object(Bucket=bucket, Key="empty")
    assert got["Body"].read() == b""
    assert got["ETag"] == '"d41d8cd98f00b204e9800998ecf8427e"'


def test_overwrite_replaces_content_and_makes_new_version(s3, bucket):
    first = s3.put_object(Bucket=bucket, Key="k", Body=b"one")
    second = s3.put_object(Bucket=bucket, Key="k", Body=b"second version")
    assert first["VersionId"] != second["VersionId"]
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"second version"
    old = s3.get_object(Bucket=bucket, Key="k", VersionId=first["VersionId"])
    assert old["Body"].read() == b"one"


def test_metadata_round_trips_on_head_and_get(s3, bucket):
    s3.put_object(
        Bucket=bucket,
        Key="meta.txt",
        Body=b"hello",
        ContentType="text/plain; charset=utf-8",
        ContentDisposition='attachment; filename="x.txt"',
        ContentLanguage="de",
        CacheControl="max-age=60",
        ContentEncoding="identity",
        Metadata={"colour": "blue", "owner": "ada"},
    )
    head = s3.head_object(Bucket=bucket, Key="meta.txt")
    assert head["ContentType"] == "text/plain; charset=utf-8"
    assert head["ContentDisposition"] == 'attachment; filename="x.txt"'
    assert head["ContentLanguage"] == "de"
    assert head["CacheControl"] == "max-age=60"
    assert head["ContentEncoding"] == "identity"
    assert head["Metadata"] == {"colour": "blue", "owner": "ada"}
    got = s3.get_object(Bucket=bucket, Key="meta.txt")
    assert got["Metadata"] == {"colour": "blue", "owner": "ada"}


def test_keys_with_special_characters_round_trip(s3, bucket):
    keys = ["with space.txt", "plus+sign", "ünïcødé/файл", "a=b&c", "tilde~x", "deep/a/b/c/d.txt"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    for key in keys:
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == key.encode()
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert sorted(listed, key=lambda k: k.encode()) == listed
    assert set(listed) == set(keys)


def test_get_missing_key_is_no_such_key(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="nope")
    assert error_code(e) == "NoSuchKey" and status(e) == 404


def test_head_missing_key_is_404(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="nope")
    assert status(e) == 404


def test_get_in_missing_bucket_is_no_such_bucket(s3):
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="master.doesnotexist", Key="x")
    assert error_code(e) == "NoSuchBucket"


def test_delete_object_removes_it_and_deleting_again_succeeds(s3, bucket):
    s3.put_object(Bucket=bucket, Key="gone", Body=b"x")
    resp = s3.delete_object(Bucket=bucket, Key="gone")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="gone")
    assert s3.delete_object(Bucket=bucket, Key="gone")["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_range_requests(s3, bucket):
    body = bytes(range(256)) * 4
    s3.put_object(Bucket=bucket, Key="r", Body=body)
    assert s3.get_object(Bucket=bucket, Key="r", Range="bytes=10-19")["Body"].read() == body[10:20]
    suffix = s3.get_object(Bucket=bucket, Key="r", Range="bytes=-5")
    assert suffix["Body"].read() == body[-5:]
    assert suffix["ContentRange"] == f"bytes {len(body) - 5}-{len(body) - 1}/{len(body)}"
    assert s3.get_object(Bucket=bucket, Key="r", Range="bytes=1000-")["Body"].read() == body[1000:]
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="r", Range=f"bytes={len(body)}-")
    assert error_code(e) == "InvalidRange" and status(e) == 416


def test_conditional_get(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="c", Body=b"cond")["ETag"]
    assert s3.get_object(Bucket=bucket, Key="c", IfMatch=etag)["Body"].read() == b"cond"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfMatch='"0000"')
    assert status(e) == 412
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfNoneMatch=etag)
    assert status(e) == 304
    last_modified = s3.head_object(Bucket=bucket, Key="c")["LastModified"]
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfModifiedSince=last_modified)
    assert status(e) == 304
    with pytest.raises(ClientError) as e:
        s3.get_object(
            Bucket=bucket, Key="c",
            IfUnmodifiedSince=last_modified.replace(year=last_modified.year - 1),
        )
    assert status(e) == 412


def test_list_objects_v1_with_delimiter_and_paging(s3, bucket):
    for key in ["a/1", "a/2", "b/1", "c", "d"]:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    page = s3.list_objects(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["a/", "b/"]
    assert [o["Key"] for o in page["Contents"]] == ["c", "d"]
    first = s3.list_objects(Bucket=bucket, MaxKeys=2)
    assert first["IsTruncated"] and [o["Key"] for o in first["Contents"]] == ["a/1", "a/2"]
    rest = s3.list_objects(Bucket=bucket, Marker="a/2")
    assert [o["Key"] for o in rest["Contents"]] == ["b/1", "c", "d"]
    prefixed = s3.list_objects(Bucket=bucket, Prefix="a/")
    assert [o["Key"] for o in prefixed["Contents"]] == ["a/1", "a/2"]


def test_list_objects_v2_paginator_over_many_keys(s3, bucket):
    keys = [f"many/{i:04d}" for i in range(1, 251)]
    # One DeleteObjects-free bulk write: each PUT is its own commit.
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"")
    listed = []
    pages = 0
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, PaginationConfig={"PageSize": 100}
    ):
        pages += 1
        assert page["KeyCount"] == len(page.get("Contents", []))
        listed += [o["Key"] for o in page.get("Contents", [])]
    assert listed == keys
    assert pages == 3


def test_list_objects_v2_start_after_and_custom_delimiter(s3, bucket):
    for key in ["x-1", "x-2", "y-1", "z"]:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    page = s3.list_objects_v2(Bucket=bucket, Delimiter="-")
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["x-", "y-"]
    assert [o["Key"] for o in page["Contents"]] == ["z"]
    after = s3.list_objects_v2(Bucket=bucket, StartAfter="x-2")
    assert [o["Key"] for o in after["Contents"]] == ["y-1", "z"]


def test_last_modified_is_recent(s3, bucket):
    s3.put_object(Bucket=bucket, Key="t", Body=b"x")
    head = s3.head_object(Bucket=bucket, Key="t")
    assert abs(head["LastModified"].timestamp() - time.time()) < 120
