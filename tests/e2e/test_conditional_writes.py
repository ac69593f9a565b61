"""Conditional writes through boto3: If-None-Match / If-Match on PUT, copy and Complete.

S3 answers 412 PreconditionFailed (404 NoSuchKey for If-Match on a missing
key) and writes nothing; racing ``If-None-Match: *`` creators: exactly one wins.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.conftest import ACCESS_KEY, SECRET_KEY, RunningGateway


def _code(e: pytest.ExceptionInfo[ClientError]) -> tuple[int, str]:
    response: Any = e.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


def test_put_copy_and_complete_honour_if_none_match_and_if_match(s3: Any, bucket: str) -> None:
    first = s3.put_object(Bucket=bucket, Key="k", Body=b"one", IfNoneMatch="*")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="k", Body=b"two", IfNoneMatch="*")
    assert _code(e) == (412, "PreconditionFailed")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="k", Body=b"two", IfMatch='"0123456789abcdef0123456789abcdef"')
    assert _code(e) == (412, "PreconditionFailed")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="missing", Body=b"x", IfMatch=first["ETag"])
    assert _code(e) == (404, "NoSuchKey")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"one"
    second = s3.put_object(Bucket=bucket, Key="k", Body=b"two", IfMatch=first["ETag"])

    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="k", CopySource=f"{bucket}/k", IfNoneMatch="*",
                       MetadataDirective="REPLACE", ContentType="text/x")
    assert _code(e) == (412, "PreconditionFailed")
    s3.copy_object(Bucket=bucket, Key="copy", CopySource=f"{bucket}/k", IfNoneMatch="*")
    assert s3.get_object(Bucket=bucket, Key="copy")["Body"].read() == b"two"

    upload = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key="k", UploadId=upload, PartNumber=1, Body=b"p" * 100)
    parts = {"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]}
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=upload,
                                     MultipartUpload=parts, IfNoneMatch="*")
    assert _code(e) == (412, "PreconditionFailed")
    assert s3.get_object(Bucket=bucket, Key="k")["ETag"] == second["ETag"]
    done = s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=upload,
                                        MultipartUpload=parts, IfMatch=second["ETag"])
    assert done["ETag"].endswith('-1"')
    versions = s3.list_object_versions(Bucket=bucket, Prefix="k")["Versions"]
    assert len([v for v in versions if v["Key"] == "k"]) == 3  # one, two, the upload


def test_racing_if_none_match_creators_exactly_one_wins(gateway: RunningGateway, bucket: str) -> None:
    racers = 8
    start = threading.Barrier(racers)
    outcomes: list[Any] = [None] * racers
    # Made here: making clients in the threads can take seconds on a loaded machine.
    clients = [
        boto3.client(
            "s3", endpoint_url=gateway.url, aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY, region_name="us-east-1",
            config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        )
        for _ in range(racers)
    ]

    def create(i: int) -> None:
        start.wait(60)
        try:
            outcomes[i] = clients[i].put_object(
                Bucket=bucket, Key="lock", Body=b"%d" % i, IfNoneMatch="*"
            )
        except ClientError as e:
            outcomes[i] = e.response["ResponseMetadata"]["HTTPStatusCode"]
        except Exception as e:  # noqa: BLE001 - shown by the assertion below
            outcomes[i] = e

    threads = [threading.Thread(target=create, args=(i,)) for i in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    winners = [i for i, o in enumerate(outcomes) if isinstance(o, dict)]
    assert len(winners) == 1, outcomes
    assert sorted(o for o in outcomes if not isinstance(o, dict)) == [412] * (racers - 1)
    s3 = boto3.client("s3", endpoint_url=gateway.url, aws_access_key_id=ACCESS_KEY,
                      aws_secret_access_key=SECRET_KEY, region_name="us-east-1")
    got = s3.get_object(Bucket=bucket, Key="lock")
    assert got["Body"].read() == b"%d" % winners[0]
    assert got["VersionId"] == outcomes[winners[0]]["VersionId"]
