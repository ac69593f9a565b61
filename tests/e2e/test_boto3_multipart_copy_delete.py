"""What boto3 does by default beyond single PUTs: multipart, batch delete, copy."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.e2e.test_boto3_objects import error_code, status

MiB = 1024 * 1024


def multipart_etag(parts: list[bytes]) -> str:
    digest = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    return f'"{digest}-{len(parts)}"'


def test_upload_file_and_download_file_100_mib(s3, bucket, tmp_path: Path):
    source = tmp_path / "hundred.bin"
    data = os.urandom(100 * MiB)
    source.write_bytes(data)
    s3.upload_file(str(source), bucket, "big/hundred.bin")
    head = s3.head_object(Bucket=bucket, Key="big/hundred.bin")
    assert head["ContentLength"] == 100 * MiB
    parts = [data[i : i + 8 * MiB] for i in range(0, len(data), 8 * MiB)]
    assert head["ETag"] == multipart_etag(parts)
    target = tmp_path / "down.bin"
    s3.download_file(bucket, "big/hundred.bin", str(target))
    assert hashlib.md5(target.read_bytes()).digest() == hashlib.md5(data).digest()
    # Nothing of the upload is left behind.
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_low_level_multipart_list_parts_and_complete(s3, bucket):
    key = "mp/dir/with/slashes.bin"
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType="application/x-test")
    upload_id = upload["UploadId"]
    uploads = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in uploads] == [(key, upload_id)]
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB), b"tail"]
    etags = []
    for number, part in enumerate(parts, 1):
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=part)
        assert r["ETag"] == f'"{hashlib.md5(part).hexdigest()}"'
        etags.append(r["ETag"])
    listed = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in listed] == [
        (i + 1, etags[i], len(parts[i])) for i in range(3)
    ]
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": i + 1, "ETag": etags[i]} for i in range(3)]},
    )
    assert done["ETag"] == multipart_etag(parts)
    got = s3.get_object(Bucket=bucket, Key=key)
    assert got["Body"].read() == b"".join(parts)
    assert got["ContentType"] == "application/x-test"
    second = s3.get_object(Bucket=bucket, Key=key, PartNumber=2)
    assert second["Body"].read() == parts[1]
    assert second["PartsCount"] == 3
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    with pytest.raises(ClientError) as e:
        s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)
    assert error_code(e) == "NoSuchUpload"


def test_abort_removes_the_upload(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="aborted")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="aborted", UploadId=upload_id, PartNumber=1, Body=b"x")
    s3.abort_multipart_upload(Bucket=bucket, Key="aborted", UploadId=upload_id)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="aborted")
    assert status(e) == 404


def test_complete_with_bad_part_lists_is_refused_and_writes_nothing(s3, bucket):
    key = "badparts"
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    small = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=b"tiny")["ETag"]
    last = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=2, Body=b"end")["ETag"]

    def complete(parts):  # type: ignore[no-untyped-def]
        with pytest.raises(ClientError) as e:
            s3.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        return error_code(e)

    assert complete([{"PartNumber": 1, "ETag": small}, {"PartNumber": 3, "ETag": last}]) == "InvalidPart"
    assert complete([{"PartNumber": 1, "ETag": '"00000000000000000000000000000000"'}]) == "InvalidPart"
    assert complete([{"PartNumber": 2, "ETag": last}, {"PartNumber": 1, "ETag": small}]) == "InvalidPartOrder"
    assert complete([{"PartNumber": 1, "ETag": small}, {"PartNumber": 2, "ETag": last}]) == "EntityTooSmall"
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key=key)
    s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)


def test_unknown_upload_id_is_no_such_upload(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket=bucket, Key="k", UploadId="nosuchupload", PartNumber=1, Body=b"x")
    assert error_code(e) == "NoSuchUpload" and status(e) == 404


def test_delete_objects_in_one_request(s3, bucket):
    keys = [f"del/{i}" for i in range(30)]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    before = s3.head_object(Bucket=bucket, Key="del/0")["VersionId"]
    result = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys] + [{"Key": "del/missing"}]}
    )
    assert sorted(d["Key"] for d in result["Deleted"]) == sorted(keys + ["del/missing"])
    assert result.get("Errors", []) == []
    assert s3.list_objects_v2(Bucket=bucket, Prefix="del/")["KeyCount"] == 0
    assert before  # the earlier version is still readable
    assert s3.get_object(Bucket=bucket, Key="del/0", VersionId=before)["Body"].read() == b"x"


def test_delete_objects_quiet_mode_reports_nothing_on_success(s3, bucket):
    s3.put_object(Bucket=bucket, Key="q", Body=b"x")
    result = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "q"}], "Quiet": True})
    assert result.get("Deleted", []) == [] and result.get("Errors", []) == []


def test_delete_objects_over_1000_keys_is_malformed(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": f"k{i}"} for i in range(1001)]})
    assert error_code(e) == "MalformedXML"


def test_copy_object_keeps_etag_and_metadata_or_replaces_it(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"copy me", ContentType="text/x-src", Metadata={"a": "1"})
    source_etag = s3.head_object(Bucket=bucket, Key="src")["ETag"]
    s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    copied = s3.get_object(Bucket=bucket, Key="dst")
    assert copied["Body"].read() == b"copy me"
    assert copied["ETag"] == source_etag
    assert copied["ContentType"] == "text/x-src" and copied["Metadata"] == {"a": "1"}
    s3.copy_object(
        Bucket=bucket, Key="dst2", CopySource={"Bucket": bucket, "Key": "src"},
        MetadataDirective="REPLACE", ContentType="text/x-new", Metadata={"b": "2"},
    )
    replaced = s3.head_object(Bucket=bucket, Key="dst2")
    assert replaced["ContentType"] == "text/x-new" and replaced["Metadata"] == {"b": "2"}


def test_copy_onto_itself_with_replace_changes_metadata(s3, bucket):
    s3.put_object(Bucket=bucket, Key="self", Body=b"me", Metadata={"v": "1"})
    s3.copy_object(
        Bucket=bucket, Key="self", CopySource={"Bucket": bucket, "Key": "self"},
        MetadataDirective="REPLACE", Metadata={"v": "2"},
    )
    head = s3.head_object(Bucket=bucket, Key="self")
    assert head["Metadata"] == {"v": "2"}
    assert s3.get_object(Bucket=bucket, Key="self")["Body"].read() == b"me"


def test_copy_to_another_bucket_and_conditions(s3, bucket):
    s3.create_bucket(Bucket=f"other.{bucket.split('.', 1)[1]}")
    other = f"other.{bucket.split('.', 1)[1]}"
    etag = s3.put_object(Bucket=bucket, Key="c", Body=b"cross")["ETag"]
    s3.copy_object(Bucket=other, Key="c", CopySource={"Bucket": bucket, "Key": "c"}, CopySourceIfMatch=etag)
    assert s3.get_object(Bucket=other, Key="c")["Body"].read() == b"cross"
    with pytest.raises(ClientError) as e:
        s3.copy_object(
            Bucket=other, Key="c2", CopySource={"Bucket": bucket, "Key": "c"},
            CopySourceIfNoneMatch=etag,
        )
    assert status(e) == 412


def test_managed_copy_of_large_object_uses_multipart_copy(s3, bucket):
    data = os.urandom(12 * MiB)
    s3.put_object(Bucket=bucket, Key="bigsrc", Body=data)
    from boto3.s3.transfer import TransferConfig

    s3.copy(
        {"Bucket": bucket, "Key": "bigsrc"}, bucket, "bigdst",
        Config=TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB),
    )
    assert s3.get_object(Bucket=bucket, Key="bigdst")["Body"].read() == data


def test_list_object_versions_shows_current_objects(s3, bucket):
    first = s3.put_object(Bucket=bucket, Key="v", Body=b"1")["VersionId"]
    second = s3.put_object(Bucket=bucket, Key="v", Body=b"22")["VersionId"]
    versions = s3.list_object_versions(Bucket=bucket)["Versions"]
    latest = [v for v in versions if v["Key"] == "v" and v["IsLatest"]]
    assert [v["VersionId"] for v in latest] == [second]
    assert first


def test_delete_with_version_id_is_not_silently_accepted(s3, bucket):
    version = s3.put_object(Bucket=bucket, Key="dv", Body=b"1")["VersionId"]
    try:
        s3.delete_object(Bucket=bucket, Key="dv", VersionId=version)
    except ClientError as e:
        assert e.response["Error"]["Code"] == "NotImplemented"
        assert s3.get_object(Bucket=bucket, Key="dv")["Body"].read() == b"1"
    else:
        with pytest.raises(ClientError):
            s3.get_object(Bucket=bucket, Key="dv", VersionId=version)
