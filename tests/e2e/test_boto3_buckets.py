"""Buckets are branches: create, list, head, locate, delete."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.e2e.test_boto3_objects import error_code, status


def test_create_bucket_lists_it_and_head_succeeds(s3):
    s3.create_bucket(Bucket="master.bucketsa")
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert "master.bucketsa" in names
    s3.head_bucket(Bucket="master.bucketsa")


def test_creating_an_existing_bucket_is_already_owned_by_you(s3):
    s3.create_bucket(Bucket="master.bucketsb")
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket="master.bucketsb")
    assert error_code(e) == "BucketAlreadyOwnedByYou" and status(e) == 409


def test_second_branch_of_same_repo_is_another_bucket(s3):
    s3.create_bucket(Bucket="master.bucketsc")
    s3.create_bucket(Bucket="dev.bucketsc")
    s3.put_object(Bucket="dev.bucketsc", Key="only-on-dev", Body=b"x")
    assert "Contents" not in s3.list_objects_v2(Bucket="master.bucketsc")
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert {"master.bucketsc", "dev.bucketsc"} <= set(names)


def test_head_missing_bucket_is_404(s3):
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket="master.nosuchrepo")
    assert status(e) == 404


def test_invalid_bucket_name_is_rejected(s3):
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket="no-dot-here")
    assert error_code(e) == "InvalidBucketName" and status(e) == 400


def test_get_bucket_location(s3, bucket):
    assert "LocationConstraint" in s3.get_bucket_location(Bucket=bucket)


def test_delete_non_empty_bucket_is_refused_then_works_when_empty(s3):
    s3.create_bucket(Bucket="master.bucketsd")
    s3.put_object(Bucket="master.bucketsd", Key="f", Body=b"x")
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket="master.bucketsd")
    assert error_code(e) == "BucketNotEmpty" and status(e) == 409
    s3.delete_object(Bucket="master.bucketsd", Key="f")
    s3.delete_bucket(Bucket="master.bucketsd")
    with pytest.raises(ClientError):
        s3.head_bucket(Bucket="master.bucketsd")
    assert "master.bucketsd" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_delete_missing_bucket_is_no_such_bucket(s3):
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket="master.neverthere")
    assert error_code(e) == "NoSuchBucket"


def test_commit_bucket_reads_a_fixed_commit_and_refuses_writes(s3, bucket):
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"v1")["VersionId"]
    s3.put_object(Bucket=bucket, Key="k", Body=b"v2")
    pinned = f"{v1}.{bucket}"
    assert s3.get_object(Bucket=pinned, Key="k")["Body"].read() == b"v1"
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=pinned, Key="k", Body=b"v3")
    assert 400 <= status(e) < 500


def test_project_bucket_form(s3):
    s3.create_bucket(Bucket="master.projrepo.default")
    s3.put_object(Bucket="master.projrepo.default", Key="k", Body=b"p")
    assert s3.get_object(Bucket="master.projrepo", Key="k")["Body"].read() == b"p"


def test_versioning_reports_enabled(s3, bucket):
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"


def test_unsupported_feature_is_501_not_implemented(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.put_bucket_policy(Bucket=bucket, Policy='{"Version": "2012-10-17", "Statement": []}')
    assert error_code(e) == "NotImplemented" and status(e) == 501
    with pytest.raises(ClientError) as e:
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "a", "Value": "b"}]})
    assert status(e) == 501
