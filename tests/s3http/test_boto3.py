"""The operations real clients use, driven by boto3 with its default settings."""

from __future__ import annotations

import hashlib
import io

import pytest_twisted
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from pachs3gw.s3.checksums import multipart_etag
from tests.s3http.conftest import MIN_PART_SIZE, S3Harness


#: s3transfer never makes parts smaller than 5 MiB.
MIB5 = 5 * 1024 * 1024


def _code(e: ClientError) -> str:
    return e.response["Error"]["Code"]


@pytest_twisted.ensureDeferred
async def test_upload_file_multipart_then_download(s3h: S3Harness, tmp_path) -> None:  # type: ignore[no-untyped-def]
    data = bytes(range(256)) * (2 * MIB5 // 256 + 7)
    src = tmp_path / "src"
    src.write_bytes(data)
    dst = tmp_path / "dst"
    cfg = TransferConfig(multipart_threshold=MIB5, multipart_chunksize=MIB5, max_concurrency=3)

    def go() -> dict:
        c = s3h.boto()
        c.create_bucket(Bucket="bucket")
        c.upload_file(str(src), "bucket", "dir/big.bin", Config=cfg)
        c.download_file("bucket", "dir/big.bin", str(dst), Config=cfg)
        return c.head_object(Bucket="bucket", Key="dir/big.bin")

    head = await s3h.in_thread(go)
    assert dst.read_bytes() == data
    parts = [data[i : i + MIB5] for i in range(0, len(data), MIB5)]
    assert len(parts) == 3
    assert head["ETag"] == '"%s"' % multipart_etag([hashlib.md5(p).hexdigest() for p in parts])
    assert s3h.backend.pending_uploads("bucket") == {}


@pytest_twisted.ensureDeferred
async def test_multipart_list_parts_list_uploads_abort(s3h: S3Harness) -> None:
    def go() -> tuple:
        c = s3h.boto()
        c.create_bucket(Bucket="bucket")
        up = c.create_multipart_upload(Bucket="bucket", Key="a/b c")["UploadId"]
        c.upload_part(Bucket="bucket", Key="a/b c", UploadId=up, PartNumber=1, Body=b"x" * MIN_PART_SIZE)
        c.upload_part(Bucket="bucket", Key="a/b c", UploadId=up, PartNumber=2, Body=b"y")
        parts = c.list_parts(Bucket="bucket", Key="a/b c", UploadId=up)["Parts"]
        uploads = c.list_multipart_uploads(Bucket="bucket")["Uploads"]
        try:
            c.upload_part(Bucket="bucket", Key="a/b c", UploadId=up, PartNumber=10001, Body=b"z")
        except ClientError as e:
            bad_number = _code(e)
        try:
            c.complete_multipart_upload(
                Bucket="bucket", Key="a/b c", UploadId=up,
                MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": parts[1]["ETag"]}, {"PartNumber": 1, "ETag": parts[0]["ETag"]}]},
            )
        except ClientError as e:
            order = _code(e)
        try:
            c.complete_multipart_upload(
                Bucket="bucket", Key="a/b c", UploadId=up,
                MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"00"'}]},
            )
        except ClientError as e:
            bad_part = _code(e)
        c.abort_multipart_upload(Bucket="bucket", Key="a/b c", UploadId=up)
        try:
            c.list_parts(Bucket="bucket", Key="a/b c", UploadId=up)
        except ClientError as e:
            gone = _code(e)
        return parts, uploads, bad_number, order, bad_part, gone

    parts, uploads, bad_number, order, bad_part, gone = await s3h.in_thread(go)
    assert [(p["PartNumber"], p["Size"]) for p in parts] == [(1, MIN_PART_SIZE), (2, 1)]
    assert [u["Key"] for u in uploads] == ["a/b c"]
    assert bad_number == "InvalidArgument"
    assert order == "InvalidPartOrder"
    assert bad_part == "InvalidPart"
    assert gone == "NoSuchUpload"


@pytest_twisted.ensureDeferred
async def test_entity_too_small(s3h: S3Harness) -> None:
    def go() -> str:
        c = s3h.boto()
        c.create_bucket(Bucket="bucket")
        up = c.create_multipart_upload(Bucket="bucket", Key="k")["UploadId"]
        e1 = c.upload_part(Bucket="bucket", Key="k", UploadId=up, PartNumber=1, Body=b"x")["ETag"]
        e2 = c.upload_part(Bucket="bucket", Key="k", UploadId=up, PartNumber=2, Body=b"y")["ETag"]
        try:
            c.complete_multipart_upload(
                Bucket="bucket", Key="k", UploadId=up,
                MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]},
            )
        except ClientError as e:
            return _code(e)
        return ""

    assert await s3h.in_thread(go) == "EntityTooSmall"


@pytest_twisted.ensureDeferred
async def test_copy_object_copy_and_replace_and_self_copy(s3h: S3Harness) -> None:
    def go() -> tuple:
        c = s3h.boto()
        c.create_bucket(Bucket="src")
        c.create_bucket(Bucket="dst")
        put = c.put_object(Bucket="src", Key="a b/ç", Body=b"data", Metadata={"m": "1"}, ContentType="text/x")
        c.copy_object(Bucket="dst", Key="copy", CopySource={"Bucket": "src", "Key": "a b/ç"})
        copied = c.head_object(Bucket="dst", Key="copy")
        c.copy_object(
            Bucket="dst", Key="copy", CopySource={"Bucket": "dst", "Key": "copy"},
            MetadataDirective="REPLACE", Metadata={"m": "2"}, ContentType="text/y",
        )
        replaced = c.head_object(Bucket="dst", Key="copy")
        try:
            c.copy_object(Bucket="dst", Key="copy", CopySource={"Bucket": "dst", "Key": "copy"})
        except ClientError as e:
            self_copy = _code(e)
        try:
            c.copy_object(Bucket="dst", Key="c2", CopySource={"Bucket": "src", "Key": "a b/ç"}, CopySourceIfMatch='"nope"')
        except ClientError as e:
            cond = _code(e)
        try:
            c.copy_object(Bucket="dst", Key="c3", CopySource={"Bucket": "src", "Key": "missing"})
        except ClientError as e:
            missing = _code(e)
        return put, copied, replaced, self_copy, cond, missing

    put, copied, replaced, self_copy, cond, missing = await s3h.in_thread(go)
    assert copied["ETag"] == put["ETag"]
    assert copied["Metadata"] == {"m": "1"} and copied["ContentType"] == "text/x"
    assert replaced["Metadata"] == {"m": "2"} and replaced["ContentType"] == "text/y"
    assert self_copy == "InvalidRequest"
    assert cond == "PreconditionFailed"
    assert missing == "NoSuchKey"


@pytest_twisted.ensureDeferred
async def test_multipart_copy_with_upload_part_copy(s3h: S3Harness) -> None:
    data = bytes(range(256)) * (2 * MIB5 // 256)
    cfg = TransferConfig(multipart_threshold=MIB5, multipart_chunksize=MIB5)

    def go() -> bytes:
        c = s3h.boto()
        c.create_bucket(Bucket="bucket")
        c.put_object(Bucket="bucket", Key="src", Body=data)
        c.copy({"Bucket": "bucket", "Key": "src"}, "bucket", "dst", Config=cfg)
        return c.get_object(Bucket="bucket", Key="dst")["Body"].read()

    assert await s3h.in_thread(go) == data
    info = await s3h.backend.head_object("bucket", "dst", None)
    assert info.part_sizes == (MIB5,) * 2


@pytest_twisted.ensureDeferred
async def test_delete_objects_verbose_and_quiet(s3h: S3Harness) -> None:
    def go() -> tuple:
        c = s3h.boto()
        c.create_bucket(Bucket="bucket")
        for k in ["a", "b", "c", "d"]:
            c.put_object(Bucket="bucket", Key=k, Body=b"x")
        verbose = c.delete_objects(Bucket="bucket", Delete={"Objects": [{"Key": "a"}, {"Key": "b"}, {"Key": "zz"}]})
        quiet = c.delete_objects(Bucket="bucket", Delete={"Objects": [{"Key": "c"}], "Quiet": True})
        return verbose, quiet

    verbose, quiet = await s3h.in_thread(go)
    assert sorted(d["Key"] for d in verbose["Deleted"]) == ["a", "b", "zz"]
    assert "Deleted" not in quiet
    assert list(s3h.backend.objects("bucket")) == ["d"]


@pytest_twisted.ensureDeferred
async def test_delete_objects_rejects_malformed_and_too_many(s3h: S3Harness) -> None:
    from tests.s3http.conftest import put_direct

    put_direct(s3h, "bucket", "k", b"x")
    r = await s3h.request("POST", "/bucket?delete", b"<Delete><Object>")
    assert r.status == 400 and b"MalformedXML" in r.body
    many = b"<Delete>" + b"".join(b"<Object><Key>k%d</Key></Object>" % i for i in range(1001)) + b"</Delete>"
    r = await s3h.request("POST", "/bucket?delete=", many)
    assert r.status == 400 and b"MalformedXML" in r.body
    assert list(s3h.backend.objects("bucket")) == ["k"]


@pytest_twisted.ensureDeferred
async def test_versions_and_version_id_reads(s3h: S3Harness) -> None:
    def go() -> tuple:
        c = s3h.boto()
        c.create_bucket(Bucket="bucket")
        v1 = c.put_object(Bucket="bucket", Key="k", Body=b"one")["VersionId"]
        c.put_object(Bucket="bucket", Key="k", Body=b"two")
        old = c.get_object(Bucket="bucket", Key="k", VersionId=v1)["Body"].read()
        versions = c.list_object_versions(Bucket="bucket")["Versions"]
        status = c.get_bucket_versioning(Bucket="bucket")["Status"]
        location = c.get_bucket_location(Bucket="bucket")["LocationConstraint"]
        try:
            c.get_object(Bucket="bucket", Key="k", VersionId="f" * 32)
        except ClientError as e:
            missing = _code(e)
        return old, versions, status, location, missing

    old, versions, status, location, missing = await s3h.in_thread(go)
    assert old == b"one"
    assert [v["IsLatest"] for v in versions] == [True, False]
    assert status == "Enabled"
    assert location is None
    assert missing == "NoSuchVersion"


@pytest_twisted.ensureDeferred
async def test_over_tls_boto3_sends_aws_chunked_with_a_crc32_trailer(make_harness) -> None:  # type: ignore[no-untyped-def]
    h = make_harness(tls=True)
    data = b"streamed " * 200000
    seen_headers = []
    real_put = h.backend.put_object

    def put_object(bucket, key, body, metadata):  # type: ignore[no-untyped-def]
        seen_headers.append(body)
        return real_put(bucket, key, body, metadata)

    h.backend.put_object = put_object

    def go() -> tuple:
        import urllib3

        urllib3.disable_warnings()
        c = h.boto()
        c.create_bucket(Bucket="bucket")
        put = c.put_object(Bucket="bucket", Key="k", Body=io.BytesIO(data))
        got = c.get_object(Bucket="bucket", Key="k", ChecksumMode="ENABLED")
        return put, got, got["Body"].read()

    put, got, body = await h.in_thread(go)
    assert body == data
    assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert got["ChecksumCRC32"] == put["ChecksumCRC32"]
    assert "ContentEncoding" not in got
    (source,) = seen_headers
    assert source.received > len(data)  # framing and trailer went over the wire


@pytest_twisted.ensureDeferred
async def test_list_objects_v2_encoding_type_url_round_trips_odd_keys(s3h: S3Harness) -> None:
    keys = ["a b", "c+d", "e%f", "g&h<i>", "ü/ñ", "x\ty"]

    def go() -> list[str]:
        c = s3h.boto()
        c.create_bucket(Bucket="bucket")
        for k in keys:
            c.put_object(Bucket="bucket", Key=k, Body=b"")
        return [o["Key"] for o in c.list_objects_v2(Bucket="bucket")["Contents"]] + [
            o["Key"] for o in c.list_objects(Bucket="bucket")["Contents"]
        ]

    assert await s3h.in_thread(go) == sorted(keys) * 2


@pytest_twisted.ensureDeferred
async def test_head_bucket_missing_is_404(s3h: S3Harness) -> None:
    def go() -> str:
        c = s3h.boto()
        try:
            c.head_bucket(Bucket="nope")
        except ClientError as e:
            return str(e.response["ResponseMetadata"]["HTTPStatusCode"])
        return ""

    assert await s3h.in_thread(go) == "404"


@pytest_twisted.ensureDeferred
async def test_slow_complete_multipart_upload_keeps_the_client_waiting_with_whitespace(s3h: S3Harness) -> None:
    from twisted.internet.task import deferLater

    s3h.server.keepalive_after = 0.05
    s3h.server.keepalive_interval = 0.05
    real = s3h.backend.complete_multipart_upload
    fail_next = [False]

    def slow(*args):  # type: ignore[no-untyped-def]
        def later():  # type: ignore[no-untyped-def]
            if fail_next[0]:
                from pachs3gw.s3 import errors

                raise errors.InvalidPart()
            return real(*args)

        return deferLater(s3h.reactor, 0.3, later)

    s3h.backend.complete_multipart_upload = slow  # type: ignore[method-assign]

    def go() -> tuple:
        c = s3h.boto()
        c.create_bucket(Bucket="bucket")
        up = c.create_multipart_upload(Bucket="bucket", Key="k")["UploadId"]
        e = c.upload_part(Bucket="bucket", Key="k", UploadId=up, PartNumber=1, Body=b"x")["ETag"]
        done = c.complete_multipart_upload(
            Bucket="bucket", Key="k", UploadId=up, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e}]}
        )
        fail_next[0] = True
        up = c.create_multipart_upload(Bucket="bucket", Key="k2")["UploadId"]
        e = c.upload_part(Bucket="bucket", Key="k2", UploadId=up, PartNumber=1, Body=b"x")["ETag"]
        try:
            c.complete_multipart_upload(
                Bucket="bucket", Key="k2", UploadId=up, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e}]}
            )
        except ClientError as err:
            return done, _code(err)
        return done, ""

    done, code = await s3h.in_thread(go)
    assert done["ETag"] == '"%s"' % multipart_etag([hashlib.md5(b"x").hexdigest()])
    assert code == "InvalidPart"
