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


# ListObjectVersions -----------------------------------------------------------


def _history(s3, bucket, **kwargs):  # type: ignore[no-untyped-def]
    """Versions and delete markers of one listing page, in S3's order (key, newest first)."""
    page = s3.list_object_versions(Bucket=bucket, **kwargs)
    entries = [dict(v, Marker=False) for v in page.get("Versions", [])]
    entries += [dict(m, Marker=True) for m in page.get("DeleteMarkers", [])]
    # boto3 splits the two kinds; S3's document interleaves them by key, newest first.
    entries.sort(key=lambda e: (e["Key"], -e["LastModified"].timestamp()))
    return page, entries


def test_versions_list_each_write_and_delete_with_the_ids_the_writes_returned(s3, bucket):
    v1 = s3.put_object(Bucket=bucket, Key="doc", Body=b"one")
    v2 = s3.put_object(Bucket=bucket, Key="doc", Body=b"second")
    s3.put_object(Bucket=bucket, Key="other", Body=b"x")
    s3.delete_object(Bucket=bucket, Key="doc")
    v3 = s3.put_object(Bucket=bucket, Key="doc", Body=b"third!")
    page = s3.list_object_versions(Bucket=bucket, Prefix="doc")
    versions = page["Versions"]
    markers = page["DeleteMarkers"]
    assert [v["VersionId"] for v in versions] == [v3["VersionId"], v2["VersionId"], v1["VersionId"]]
    assert [v["IsLatest"] for v in versions] == [True, False, False]
    assert [v["Size"] for v in versions] == [6, 6, 3]
    assert [v["ETag"] for v in versions] == [v3["ETag"], v2["ETag"], v1["ETag"]]
    assert len(markers) == 1 and markers[0]["Key"] == "doc" and not markers[0]["IsLatest"]
    assert versions[1]["LastModified"] <= markers[0]["LastModified"] <= versions[0]["LastModified"]
    for v, body in zip(versions, [b"third!", b"second", b"one"]):
        got = s3.get_object(Bucket=bucket, Key="doc", VersionId=v["VersionId"])
        assert got["Body"].read() == body and got["ETag"] == v["ETag"]
    assert "other" not in [v["Key"] for v in versions]


def test_versions_of_a_deleted_key_end_with_a_latest_delete_marker(s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="gone/k", Body=b"x")
    s3.delete_object(Bucket=bucket, Key="gone/k")
    page = s3.list_object_versions(Bucket=bucket)
    assert [v["VersionId"] for v in page["Versions"]] == [put["VersionId"]]
    assert not page["Versions"][0]["IsLatest"]
    assert [m["IsLatest"] for m in page["DeleteMarkers"]] == [True]
    grouped = s3.list_object_versions(Bucket=bucket, Delimiter="/")
    assert grouped["CommonPrefixes"] == [{"Prefix": "gone/"}]
    assert "Versions" not in grouped


def test_a_history_of_1000_commits_lists_page_by_page(s3, bucket, gateway):
    """One key written, overwritten, deleted and rewritten over 1,000 commits.

    The commits are written straight to PFS (as pachctl would: faster than
    1,000 S3 PUTs); the listing goes through boto3, 97 entries a page.
    """
    from tests.e2e.pfs_direct import history_of_commits

    repo = bucket.split(".", 1)[1]
    s3.put_object(Bucket=bucket, Key="a-first", Body=b"a")
    expected = history_of_commits(gateway, repo, "master", "/k", 1000)
    s3.put_object(Bucket=bucket, Key="z-last", Body=b"z")
    entries = []
    marker: dict[str, str] = {}
    pages = 0
    while True:
        page, found = _history(s3, bucket, MaxKeys=97, **marker)
        pages += 1
        assert len(found) <= 97
        entries += found
        if not page["IsTruncated"]:
            break
        marker = {"KeyMarker": page["NextKeyMarker"], "VersionIdMarker": page["NextVersionIdMarker"]}
    assert pages == -(-1002 // 97)
    keys = [e["Key"] for e in entries]
    assert keys == ["a-first"] + ["k"] * 1000 + ["z-last"]
    k = [e for e in entries if e["Key"] == "k"]
    assert [(e["VersionId"], e["Marker"]) for e in k] == [
        (commit, data is None) for commit, data in reversed(expected)
    ]
    assert [e["IsLatest"] for e in k] == [True] + [False] * 999
    # A few versions read back exactly, at the version ID listed for them.
    for commit, data in expected[::211]:
        if data is not None:
            got = s3.get_object(Bucket=bucket, Key="k", VersionId=commit)
            assert got["Body"].read() == data


# DELETE ?versionId= -----------------------------------------------------------


def test_deleting_the_latest_delete_marker_restores_the_previous_version(s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="r", Body=b"keep me", ContentType="text/x-kept")
    s3.delete_object(Bucket=bucket, Key="r")
    marker = s3.list_object_versions(Bucket=bucket)["DeleteMarkers"][0]
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="r")
    out = s3.delete_object(Bucket=bucket, Key="r", VersionId=marker["VersionId"])
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert out["DeleteMarker"] is True and out["VersionId"] == marker["VersionId"]
    got = s3.get_object(Bucket=bucket, Key="r")
    assert got["Body"].read() == b"keep me"
    assert got["ETag"] == put["ETag"] and got["ContentType"] == "text/x-kept"
    # One new commit: it is the latest version now, the marker stays in history.
    page = s3.list_object_versions(Bucket=bucket)
    assert [v["IsLatest"] for v in page["Versions"]] == [True, False]
    assert page["Versions"][0]["VersionId"] == got["VersionId"] != put["VersionId"]
    assert [m["IsLatest"] for m in page["DeleteMarkers"]] == [False]
    # That marker is no longer the latest: deleting it again is refused.
    with pytest.raises(ClientError) as e:
        s3.delete_object(Bucket=bucket, Key="r", VersionId=marker["VersionId"])
    assert error_code(e) == "NotImplemented" and "immutable" in e.value.response["Error"]["Message"]


def test_deleting_a_version_is_not_implemented_and_says_commits_are_immutable(s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="v", Body=b"1")
    with pytest.raises(ClientError) as e:
        s3.delete_object(Bucket=bucket, Key="v", VersionId=put["VersionId"])
    assert error_code(e) == "NotImplemented" and status(e) == 501
    assert "immutable" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        s3.delete_object(Bucket=bucket, Key="v", VersionId="f" * 32)
    assert error_code(e) == "NoSuchVersion"
    assert s3.get_object(Bucket=bucket, Key="v")["Body"].read() == b"1"


def test_delete_objects_with_a_delete_marker_restores_and_refuses_versions(s3, bucket):
    kept = s3.put_object(Bucket=bucket, Key="m", Body=b"m")
    s3.delete_object(Bucket=bucket, Key="m")
    marker = s3.list_object_versions(Bucket=bucket, Prefix="m")["DeleteMarkers"][0]["VersionId"]
    s3.put_object(Bucket=bucket, Key="n", Body=b"n")
    out = s3.delete_objects(
        Bucket=bucket,
        Delete={"Objects": [
            {"Key": "m", "VersionId": marker},
            {"Key": "m", "VersionId": kept["VersionId"]},
            {"Key": "n"},
        ]},
    )
    # "n" is deleted as S3 does it in a versioned bucket: a delete marker, whose
    # version is the commit that removed it.
    assert [(d["Key"], d.get("DeleteMarker")) for d in out["Deleted"]] == [("m", True), ("n", True)]
    assert [(e["Key"], e["Code"]) for e in out["Errors"]] == [("m", "NotImplemented")]
    assert s3.get_object(Bucket=bucket, Key="m")["Body"].read() == b"m"
    markers = s3.list_object_versions(Bucket=bucket, Prefix="n")["DeleteMarkers"]
    assert [m["VersionId"] for m in markers] == [out["Deleted"][1]["DeleteMarkerVersionId"]]


def test_reading_a_delete_marker_version_is_method_not_allowed(s3, bucket, gateway):
    import urllib.request

    s3.put_object(Bucket=bucket, Key="dm", Body=b"x")
    s3.delete_object(Bucket=bucket, Key="dm")
    marker = s3.list_object_versions(Bucket=bucket)["DeleteMarkers"][0]["VersionId"]
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="dm", VersionId=marker)
    assert error_code(e) == "MethodNotAllowed" and status(e) == 405
    assert e.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-delete-marker"] == "true"
    req = urllib.request.Request(f"{gateway.url}/{bucket}/dm?versionId={marker}", method="HEAD")
    with pytest.raises(urllib.error.HTTPError) as raw:
        urllib.request.urlopen(req)
    assert raw.value.code == 405 and raw.value.headers["x-amz-version-id"] == marker
