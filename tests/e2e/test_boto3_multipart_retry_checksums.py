"""Retry-safe multipart completion and composite checksums (issue 13, point 5), over a real gateway."""

from __future__ import annotations

import base64
import hashlib
import os
import zlib

import pytest
from botocore.exceptions import ClientError

MiB = 1024 * 1024



def composite(algorithm, parts: list[bytes]) -> str:  # type: ignore[no-untyped-def]
    """AWS's checksum of checksums: H(concat(binary part checksums)), base64, ``-N``."""
    if algorithm == "CRC32":
        binary = [zlib.crc32(p).to_bytes(4, "big") for p in parts]
        whole = zlib.crc32(b"".join(binary)).to_bytes(4, "big")
    else:
        binary = [hashlib.sha256(p).digest() for p in parts]
        whole = hashlib.sha256(b"".join(binary)).digest()
    return f"{base64.b64encode(whole).decode()}-{len(parts)}"


def _upload_two_parts(s3, bucket, key, algorithm=None):  # type: ignore[no-untyped-def]
    kwargs = {"ChecksumAlgorithm": algorithm} if algorithm else {}
    created = s3.create_multipart_upload(Bucket=bucket, Key=key, **kwargs)
    data = [os.urandom(5 * MiB), os.urandom(1234)]
    parts = []
    for number, body in enumerate(data, 1):
        up = s3.upload_part(
            Bucket=bucket, Key=key, UploadId=created["UploadId"], PartNumber=number, Body=body,
            **kwargs,
        )
        part = {"PartNumber": number, "ETag": up["ETag"]}
        if algorithm:
            part[f"Checksum{algorithm}"] = up[f"Checksum{algorithm}"]
        parts.append(part)
    return created, data, parts


def test_repeated_complete_answers_the_same_result(s3, bucket):
    created, data, parts = _upload_two_parts(s3, bucket, "retry/obj")
    first = s3.complete_multipart_upload(
        Bucket=bucket, Key="retry/obj", UploadId=created["UploadId"],
        MultipartUpload={"Parts": parts},
    )
    again = s3.complete_multipart_upload(
        Bucket=bucket, Key="retry/obj", UploadId=created["UploadId"],
        MultipartUpload={"Parts": parts},
    )
    assert again["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert (again["ETag"], again["VersionId"]) == (first["ETag"], first["VersionId"])
    assert s3.get_object(Bucket=bucket, Key="retry/obj")["Body"].read() == b"".join(data)
    # The retry made no new commit: the object's version is still the first.
    assert s3.head_object(Bucket=bucket, Key="retry/obj")["VersionId"] == first["VersionId"]
    # A different part list is not a retry; nor is another key.
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="retry/obj", UploadId=created["UploadId"],
            MultipartUpload={"Parts": parts[:1]},
        )
    assert e.value.response["Error"]["Code"] == "NoSuchUpload"
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="retry/other", UploadId=created["UploadId"],
            MultipartUpload={"Parts": parts},
        )
    assert e.value.response["Error"]["Code"] == "NoSuchUpload"


@pytest.mark.parametrize("algorithm", ["CRC32", "SHA256"])
def test_checksum_algorithm_gives_a_composite_checksum(s3, bucket, algorithm):
    key = f"ck/{algorithm}"
    created, data, parts = _upload_two_parts(s3, bucket, key, algorithm)
    assert created["ChecksumAlgorithm"] == algorithm
    listed = s3.list_parts(Bucket=bucket, Key=key, UploadId=created["UploadId"])["Parts"]
    assert [p[f"Checksum{algorithm}"] for p in listed] == [p[f"Checksum{algorithm}"] for p in parts]
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=created["UploadId"], MultipartUpload={"Parts": parts}
    )
    expected = composite(algorithm, data)
    assert done[f"Checksum{algorithm}"] == expected
    head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert head[f"Checksum{algorithm}"] == expected
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-checksum-type"] == "COMPOSITE"
    assert "Checksum" + algorithm not in s3.head_object(Bucket=bucket, Key=key)
    got = s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert got["Body"].read() == b"".join(data) and got[f"Checksum{algorithm}"] == expected
    attrs = s3.get_object_attributes(
        Bucket=bucket, Key=key, ObjectAttributes=["Checksum", "ObjectParts", "ObjectSize"]
    )
    assert attrs["Checksum"][f"Checksum{algorithm}"] == expected
    assert attrs["Checksum"]["ChecksumType"] == "COMPOSITE"
    assert attrs["ObjectParts"]["TotalPartsCount"] == 2
    assert [p["Size"] for p in attrs["ObjectParts"]["Parts"]] == [len(d) for d in data]
    assert [p[f"Checksum{algorithm}"] for p in attrs["ObjectParts"]["Parts"]] == [
        p[f"Checksum{algorithm}"] for p in parts
    ]
    assert attrs["ObjectSize"] == sum(map(len, data))


def test_upload_file_with_default_crc32_gets_its_composite_checksum(s3, bucket, tmp_path):
    data = os.urandom(9 * MiB)  # boto3 switches to multipart at 8 MiB, CRC32 by default
    source = tmp_path / "nine.bin"
    source.write_bytes(data)
    s3.upload_file(str(source), bucket, "tm/nine.bin")
    head = s3.head_object(Bucket=bucket, Key="tm/nine.bin", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == composite("CRC32", [data[: 8 * MiB], data[8 * MiB :]])


def test_a_part_without_the_uploads_checksum_is_refused_at_complete(s3, bucket):
    created = s3.create_multipart_upload(Bucket=bucket, Key="ck/none", ChecksumAlgorithm="SHA256")
    up = s3.upload_part(
        Bucket=bucket, Key="ck/none", UploadId=created["UploadId"], PartNumber=1, Body=b"x",
        ChecksumAlgorithm="CRC32",
    )
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="ck/none", UploadId=created["UploadId"],
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": up["ETag"]}]},
        )
    assert e.value.response["Error"]["Code"] == "InvalidRequest"
    with pytest.raises(ClientError) as e:
        s3.create_multipart_upload(Bucket=bucket, Key="ck/bad", ChecksumAlgorithm="MD5")
    assert e.value.response["Error"]["Code"] in ("InvalidRequest", "InvalidArgument")
