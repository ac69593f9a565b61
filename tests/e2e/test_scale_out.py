"""Scale-out as documented: two gateways with ``--pachd`` in front of one standalone pfsd.

Clients alternate between them: nothing a gateway keeps may make the other
one answer differently.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Iterator

import boto3
import pytest

from tests.conftest import ACCESS_KEY, ROOT, SECRET_KEY, RunningGateway, repo_env, start_gateway


@pytest.fixture(scope="module")
def two_gateways(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningGateway, RunningGateway]]:
    tmp = tmp_path_factory.mktemp("scale-out")
    pfsd = subprocess.Popen(
        [sys.executable, "-m", "pachs3gw.pfsd", "--listen", "127.0.0.1:0", "--data-dir", str(tmp / "store")],
        cwd=ROOT, env=repo_env(), stdout=subprocess.PIPE, text=True,
    )
    assert pfsd.stdout is not None
    line = pfsd.stdout.readline()
    assert line.startswith("LISTENING "), line
    address = line.split()[1]
    first = start_gateway(tmp / "gw1", "--pachd", address)
    second = start_gateway(tmp / "gw2", "--pachd", address)
    try:
        yield first, second
    finally:
        first.stop()
        second.stop()
        pfsd.terminate()
        pfsd.wait(20)


def s3_for(gateway: RunningGateway):  # type: ignore[no-untyped-def]
    return boto3.client("s3", endpoint_url=gateway.url, aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=SECRET_KEY, region_name="us-east-1")


def test_a_put_on_one_gateway_is_read_at_once_on_the_other(two_gateways):
    one, other = (s3_for(g) for g in two_gateways)
    one.create_bucket(Bucket="master.shared")
    for i in range(5):
        body = f"version {i}".encode()
        put = one.put_object(Bucket="master.shared", Key="k", Body=body)
        got = other.get_object(Bucket="master.shared", Key="k")
        assert got["Body"].read() == body
        assert got["ETag"] == put["ETag"]
        one, other = other, one  # and the other way round
    keys = [o["Key"] for o in other.list_objects_v2(Bucket="master.shared")["Contents"]]
    assert keys == ["k"]


def test_metadata_written_on_one_is_seen_on_the_other(two_gateways):
    one, other = (s3_for(g) for g in two_gateways)
    one.create_bucket(Bucket="master.meta")
    one.put_object(Bucket="master.meta", Key="doc", Body=b"{}", ContentType="application/json",
                   Metadata={"colour": "blue"})
    head = other.head_object(Bucket="master.meta", Key="doc")
    assert head["ContentType"] == "application/json"
    assert head["Metadata"] == {"colour": "blue"}
    # Overwritten through the second one: the first sees the new record at once.
    other.put_object(Bucket="master.meta", Key="doc", Body=b"[]", Metadata={"colour": "red"})
    assert one.head_object(Bucket="master.meta", Key="doc")["Metadata"] == {"colour": "red"}


def test_a_multipart_upload_started_on_one_is_completed_on_the_other(two_gateways):
    one, other = (s3_for(g) for g in two_gateways)
    one.create_bucket(Bucket="master.parts")
    part_size = 5 * 1024 * 1024
    parts_data = [bytes([65 + n]) * part_size for n in range(2)] + [b"tail"]
    upload = one.create_multipart_upload(Bucket="master.parts", Key="big", Metadata={"origin": "one"})
    upload_id = upload["UploadId"]
    parts = []
    for n, data in enumerate(parts_data, start=1):
        client = one if n % 2 else other  # parts through both
        etag = client.upload_part(Bucket="master.parts", Key="big", PartNumber=n,
                                  UploadId=upload_id, Body=data)["ETag"]
        parts.append({"PartNumber": n, "ETag": etag})
    listed = one.list_parts(Bucket="master.parts", Key="big", UploadId=upload_id)["Parts"]
    assert [p["PartNumber"] for p in listed] == [1, 2, 3]
    assert [u["UploadId"] for u in other.list_multipart_uploads(Bucket="master.parts")["Uploads"]] == [upload_id]
    done = other.complete_multipart_upload(Bucket="master.parts", Key="big", UploadId=upload_id,
                                           MultipartUpload={"Parts": parts})
    got = one.get_object(Bucket="master.parts", Key="big")
    assert got["Body"].read() == b"".join(parts_data)
    assert got["ETag"] == done["ETag"] and got["ETag"].endswith('-3"')
    assert got["Metadata"] == {"origin": "one"}
