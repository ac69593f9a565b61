"""What Pachyderm's clients write, S3 serves, and the other way round.

The real gateway (twistd) fronts a standalone pfsd over gRPC (``--pachd``);
python-pachyderm and pachyderm-sdk talk to the same pfsd directly.
"""

from __future__ import annotations

import base64
import hashlib
import os

import boto3
import pytest

from tests.conftest import ACCESS_KEY, SECRET_KEY, RunningGateway
from tests.pachyderm_clients.conftest import Driver, new_name


@pytest.fixture
def s3(gateway_on_pfsd: RunningGateway):  # type: ignore[no-untyped-def]
    return boto3.client(
        "s3", endpoint_url=gateway_on_pfsd.url, aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY, region_name="us-east-1",
    )


def test_file_put_with_python_pachyderm_is_served_by_s3_with_the_pfs_hash_as_etag(pp: Driver, s3) -> None:  # type: ignore[no-untyped-def]
    repo = new_name("rt")
    data = os.urandom(3 * 1024 * 1024 + 17)
    pp.run(f"client.create_repo({repo!r})")
    pp.run(f"client.create_branch({repo!r}, 'master')")
    pp.run(f"data = {data!r}")
    pp.run(
        f"with client.modify_file_client(({repo!r}, 'master')) as mfc:\n"
        "    mfc.put_file_from_bytes('/dir/a.bin', data)\n"
        "    mfc.put_file_from_bytes('/top.txt', b'top')\n"
    )
    etag = pfs_etag(pp, repo, "/dir/a.bin")
    commit_id = pp.eval(f"client.inspect_branch({repo!r}, 'master')")["head"]["id"]
    bucket = f"master.{repo}"

    got = s3.get_object(Bucket=bucket, Key="dir/a.bin")
    assert got["Body"].read() == data
    assert got["ETag"] == etag
    assert got["ContentLength"] == len(data)
    assert got.get("VersionId") in (None, commit_id)
    head = s3.head_object(Bucket=bucket, Key="dir/a.bin")
    assert (head["ETag"], head["ContentLength"]) == (etag, len(data))
    listing = s3.list_objects_v2(Bucket=bucket)
    assert [(o["Key"], o["ETag"], o["Size"]) for o in listing["Contents"]] == [
        ("dir/a.bin", etag, len(data)), ("top.txt", pfs_etag(pp, repo, "/top.txt"), 3),
    ]
    delimited = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in delimited["CommonPrefixes"]] == ["dir/"]
    # The commit python-pachyderm made reads back through S3 as that version.
    old = s3.get_object(Bucket=bucket, Key="top.txt", VersionId=commit_id)
    assert old["Body"].read() == b"top"


def test_object_put_through_s3_reads_back_with_pachyderm_sdk_at_the_version_id(sdk: Driver, s3) -> None:  # type: ignore[no-untyped-def]
    repo = new_name("rt")
    bucket = f"master.{repo}"
    s3.create_bucket(Bucket=bucket)
    first = os.urandom(2 * 1024 * 1024 + 5)
    put = s3.put_object(Bucket=bucket, Key="from-s3/x.bin", Body=first)
    version = put["VersionId"]
    second = s3.put_object(Bucket=bucket, Key="from-s3/x.bin", Body=b"newer")["VersionId"]
    assert second != version

    at_version = f"pfs.File.from_uri('{repo}@{version}:/from-s3/x.bin')"
    got = sdk.eval(f"client.pfs.pfs_file(file={at_version}).read()")
    assert hashlib.sha256(got).digest() == hashlib.sha256(first).digest()
    # The version ID is a commit of the branch, made by that PUT alone.
    commit = sdk.eval(f"client.pfs.inspect_commit(commit=pfs.Commit.from_uri('{repo}@{version}'))")
    assert commit["commit"]["id"] == version
    assert "finished" in commit
    # The head has the newer bytes, at the same path; its diff is that one file.
    head_file = f"pfs.File.from_uri('{repo}@master:/from-s3/x.bin')"
    assert sdk.eval(f"client.pfs.pfs_file(file={head_file}).read()") == b"newer"
    assert sdk.eval(f"client.pfs.inspect_commit(commit=pfs.Commit.from_uri('{repo}@master'))")["commit"]["id"] == second
    diff = sdk.eval(f"list(client.pfs.diff_file(new_file=pfs.File.from_uri('{repo}@{second}:/')))")
    assert [d["new_file"]["file"]["path"] for d in diff] == ["/", "/from-s3/", "/from-s3/x.bin"]
    # S3 metadata lives elsewhere: the user's repo holds the object only.
    walked = sdk.eval(f"client.pfs.walk_file(file=pfs.File.from_uri('{repo}@master:/'))")
    assert [f["file"]["path"] for f in walked] == ["/", "/from-s3/", "/from-s3/x.bin"]


def pfs_etag(pp: Driver, repo: str, path: str) -> str:
    """The ETag S3 must show for a file written outside the gateway: hex of its PFS hash."""
    info = pp.eval(f"client.inspect_file(({repo!r}, 'master'), {path!r})")
    return '"' + base64.b64decode(info["hash"]).hex() + '"'


def test_files_pachyderm_clients_wrote_stay_readable_beside_keys_pfs_would_refuse(pp: Driver, sdk: Driver, s3) -> None:  # type: ignore[no-untyped-def]
    """Plain keys keep their paths; ``../x`` and ``a//b`` go where PFS keeps them as they are."""
    repo = new_name("odd")
    bucket = f"master.{repo}"
    pp.run(f"client.create_repo({repo!r})")
    pp.run(f"client.create_branch({repo!r}, 'master')")
    pp.run(
        f"with client.modify_file_client(({repo!r}, 'master')) as mfc:\n"
        "    mfc.put_file_from_bytes('/old/plain.txt', b'old')\n"
        "    mfc.put_file_from_bytes('/old/caf\\u00e9 (1).txt', b'accent')\n"
    )
    s3.put_object(Bucket=bucket, Key="../x", Body=b"dotdot")
    s3.put_object(Bucket=bucket, Key="old//x", Body=b"empty segment")
    s3.put_object(Bucket=bucket, Key="old/new.txt", Body=b"new")
    assert s3.get_object(Bucket=bucket, Key="old/plain.txt")["Body"].read() == b"old"
    # The embedded store keeps characters pachd refuses: that file is read where it was written.
    assert s3.get_object(Bucket=bucket, Key="old/café (1).txt")["Body"].read() == b"accent"
    listing = s3.list_objects_v2(Bucket=bucket)
    assert [o["Key"] for o in listing["Contents"]] == [
        "../x", "old//x", "old/café (1).txt", "old/new.txt", "old/plain.txt",
    ]
    # What Pachyderm's clients see: the plain files as they are, the others encoded.
    files = sorted(
        f["file"]["path"]
        for f in sdk.eval(f"client.pfs.walk_file(file=pfs.File.from_uri('{repo}@master:/'))")
        if not f["file"]["path"].endswith("/")
    )
    assert files == sorted([
        "/.pachs3gw-keys/" + "../x".encode().hex(), "/.pachs3gw-keys/" + "old//x".encode().hex(),
        "/old/café (1).txt", "/old/new.txt", "/old/plain.txt",
    ])
    assert pp.eval(f"client.get_file(({repo!r}, 'master'), '/old/new.txt').read()") == b"new"
