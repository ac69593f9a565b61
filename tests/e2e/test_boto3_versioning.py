"""Versioning as S3 clients expect it, over a real gateway: every write is a commit.

Covers PutBucketVersioning (issue 13, point 1), ListObjectVersions over the
branch's history with delete markers (point 2), and DELETE of a delete
marker (point 3).
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError


def error_code(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    return excinfo.value.response["Error"]["Code"]


def status(excinfo: pytest.ExceptionInfo[ClientError]) -> int:
    return excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"]


# PutBucketVersioning ----------------------------------------------------------


def test_put_bucket_versioning_enabled_answers_200_and_stays_enabled(s3, bucket):
    put = s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    # Turning it on twice is as harmless as on S3.
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"


def test_put_bucket_versioning_suspended_is_refused_with_a_clear_error(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    assert error_code(e) == "InvalidBucketState" and status(e) == 409
    assert "commit" in e.value.response["Error"]["Message"]
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"


def test_put_bucket_versioning_of_missing_bucket_is_no_such_bucket(s3):
    with pytest.raises(ClientError) as e:
        s3.put_bucket_versioning(
            Bucket="master.nosuchrepoversioning", VersioningConfiguration={"Status": "Enabled"}
        )
    assert error_code(e) == "NoSuchBucket"


def test_put_bucket_versioning_with_a_bad_body_is_malformed_xml(s3, bucket, gateway):
    import urllib.request

    req = urllib.request.Request(
        f"{gateway.url}/{bucket}?versioning",
        data=b"<VersioningConfiguration><Status>Sometimes</Status></VersioningConfiguration>",
        method="PUT",
    )
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req)
    assert e.value.code == 400 and b"MalformedXML" in e.value.read()
