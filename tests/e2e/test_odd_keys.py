"""Keys S3 stores but PFS would refuse or rewrite, through boto3 and raw HTTP (issue 12, point 6).

``../x``, ``a//b``, ``/lead``, ``.``, ... used to be 400 InvalidArgument; S3
stores them, and so does the gateway (encoded where PFS would not keep the
path: ARCHITECTURE.md, "Where state lives").
"""

from __future__ import annotations

import hashlib
import http.client
from urllib.parse import quote, unquote
from xml.etree import ElementTree

import pytest
from botocore.exceptions import ClientError

from tests.e2e.pfs_direct import _stub
from pachs3gw.pfs import refs
from pachs3gw.proto import pfs_v2_pb2 as pfs

ODD = ["../x", "./x", "a//b", "/lead", ".", "..", "a/./b", "a//", "x/.s3folder", "ctl\x01\x7f", "café (1)"]
NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def raw(gateway, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def listed(body: bytes) -> tuple[list[str], list[str]]:
    root = ElementTree.fromstring(body)
    keys = [unquote(e.text or "") for e in root.iter(NS + "Key")]
    prefixes = [unquote(e.text or "") for e in root.iter(NS + "Prefix") if e is not root.find(NS + "Prefix")]
    return keys, prefixes


@pytest.mark.parametrize("key", ODD)
def test_boto3_round_trips_an_odd_key(s3, bucket, key):  # type: ignore[no-untyped-def]
    body = b"odd " + key.encode()
    put = s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata={"m": "1"})
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key=key)
    assert got["Body"].read() == body and got["Metadata"] == {"m": "1"}
    assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == len(body)
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=key)
    assert [o["Key"] for o in listing["Contents"]] == [key]
    # Delimiter "/": the key, or the common prefix it rolls up into.
    delimited = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    cut = key.find("/")
    if cut < 0:
        assert [o["Key"] for o in delimited["Contents"]] == [key]
    else:
        assert [p["Prefix"] for p in delimited["CommonPrefixes"]] == [key[: cut + 1]]
    s3.copy_object(Bucket=bucket, Key=key + ".copy", CopySource={"Bucket": bucket, "Key": key})
    assert s3.get_object(Bucket=bucket, Key=key + ".copy")["Body"].read() == body
    s3.copy_object(Bucket=bucket, Key="plain", CopySource={"Bucket": bucket, "Key": key})
    assert s3.get_object(Bucket=bucket, Key="plain")["Body"].read() == body
    if key.isprintable():
        result = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": key + ".copy"}]})
        assert [d["Key"] for d in result["Deleted"]] == [key + ".copy"]
    else:  # XML 1.0 cannot carry control characters: S3 too answers MalformedXML
        s3.delete_object(Bucket=bucket, Key=key + ".copy")
    s3.delete_object(Bucket=bucket, Key=key)
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key=key)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["plain"]


def test_boto3_multipart_upload_of_odd_keys(s3, bucket):  # type: ignore[no-untyped-def]
    parts = [b"a" * (5 * 1024 * 1024), b"tail"]
    for key in ("../mp", "a//mp", "/mp/"):
        upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        etags = [
            s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=n, Body=p)["ETag"]
            for n, p in enumerate(parts, 1)
        ]
        s3.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]},
        )
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"".join(parts)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["../mp", "/mp/", "a//mp"]


def test_boto3_paging_over_odd_and_plain_keys_is_in_s3_order(s3, bucket):  # type: ignore[no-untyped-def]
    keys = ["a/", "a/-x", "a//b", "a/b", "..", "../x", "/lead", "b", "a/.env", "a/./c", "z//"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"")
    paginator = s3.get_paginator("list_objects_v2")
    seen = [o["Key"] for page in paginator.paginate(Bucket=bucket, PaginationConfig={"PageSize": 2}) for o in page["Contents"]]
    assert seen == sorted(keys, key=lambda k: k.encode())
    v1 = s3.get_paginator("list_objects")
    seen = [o["Key"] for page in v1.paginate(Bucket=bucket, Prefix="a/", PaginationConfig={"PageSize": 1}) for o in page["Contents"]]
    assert seen == ["a/", "a/-x", "a/./c", "a/.env", "a//b", "a/b"]
    # Prefix "a/" lists "a//b"; delimiter "/" rolls it into "a//".
    page = s3.list_objects_v2(Bucket=bucket, Prefix="a/", Delimiter="/")
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["a/./", "a//"]
    assert [o["Key"] for o in page["Contents"]] == ["a/", "a/-x", "a/.env", "a/b"]
    page = s3.list_objects_v2(Bucket=bucket, Delimiter="/", StartAfter="/lead")
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["a/", "z/"]
    versions = s3.list_object_versions(Bucket=bucket, Prefix="..")
    assert [v["Key"] for v in versions["Versions"]] == ["..", "../x"]


@pytest.mark.parametrize(
    "raw_key, key",
    [("../x", "../x"), ("%2E%2E/x", "../x"), ("./x", "./x"), ("a//b", "a//b"), ("/lead", "/lead"),
     (".", "."), ("a/./b", "a/./b"), ("%00nul", "\x00nul"), ("new%0Aline", "new\nline")],
)
def test_raw_http_takes_the_key_from_the_request_line_as_it_is(gateway, s3, bucket, raw_key, key):  # type: ignore[no-untyped-def]
    status, _, body = raw(gateway, "PUT", f"/{bucket}/{raw_key}", b"raw")
    assert status == 200, body
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"raw"
    status, headers, body = raw(gateway, "GET", f"/{bucket}/{raw_key}")
    assert (status, body) == (200, b"raw")
    status, headers, _ = raw(gateway, "HEAD", f"/{bucket}/{raw_key}")
    assert status == 200 and headers["Content-Length"] == "3"
    status, _, body = raw(gateway, "GET", f"/{bucket}?list-type=2&encoding-type=url&prefix={quote(key, safe='')}")
    assert listed(body)[0] == [key]
    status, _, body = raw(gateway, "DELETE", f"/{bucket}/{raw_key}")
    assert status == 204
    status, _, _ = raw(gateway, "GET", f"/{bucket}/{raw_key}")
    assert status == 404


def test_an_old_plain_key_keeps_its_path_beside_odd_keys(gateway, s3, bucket):  # type: ignore[no-untyped-def]
    """Pachyderm's tools see plain keys as the files they are; odd ones under /.pachs3gw-keys/."""
    s3.put_object(Bucket=bucket, Key="data/part-0.csv", Body=b"1,2\n")
    s3.put_object(Bucket=bucket, Key="data//part-1.csv", Body=b"3,4\n")
    channel, stub = _stub(gateway)
    with channel:
        head = refs.branch_head(bucket.split(".")[1], "master")
        files = sorted(
            info.file.path
            for info in stub.WalkFile(pfs.WalkFileRequest(file=pfs.File(commit=head, path="/")))
            if not info.file.path.endswith("/")
        )
    assert files == ["/.pachs3gw-keys/" + "data//part-1.csv".encode().hex(), "/data/part-0.csv"]
