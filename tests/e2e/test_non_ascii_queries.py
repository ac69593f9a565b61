"""Query values outside ASCII (``café``) are answered like any other, by every client."""

from __future__ import annotations

import http.client
from urllib.parse import quote
from xml.etree import ElementTree

from tests.e2e.clients import aws

_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
KEYS = ["café/a", "café/b", "café/sub/c", "cafés", "naïve", "zürich/x", "plain"]


def _fill(s3, bucket: str) -> None:  # type: ignore[no-untyped-def]
    for key in KEYS:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())


def test_aws_cli_ls_of_a_non_ascii_prefix(gateway, s3, bucket):
    _fill(s3, bucket)
    out = aws(gateway.url, "s3", "ls", f"s3://{bucket}/café/").stdout
    lines = [line.split()[-1] for line in out.strip().splitlines()]
    assert sorted(lines) == ["a", "b", "sub/"]


def test_list_objects_v2_with_non_ascii_prefix_start_after_and_delimiter(s3, bucket):
    _fill(s3, bucket)
    page = s3.list_objects_v2(Bucket=bucket, Prefix="café/", Delimiter="/")
    assert [o["Key"] for o in page["Contents"]] == ["café/a", "café/b"]
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["café/sub/"]
    after = s3.list_objects_v2(Bucket=bucket, StartAfter="café/b")
    assert [o["Key"] for o in after["Contents"]] == ["café/sub/c", "cafés", "naïve", "plain", "zürich/x"]
    by_umlaut = s3.list_objects_v2(Bucket=bucket, Delimiter="ü")
    assert [p["Prefix"] for p in by_umlaut["CommonPrefixes"]] == ["zü"]


def test_list_objects_v1_marker_paging_through_non_ascii_keys(s3, bucket):
    _fill(s3, bucket)
    seen: list[str] = []
    marker = ""
    while True:
        page = s3.list_objects(Bucket=bucket, Marker=marker, MaxKeys=2)
        seen += [o["Key"] for o in page.get("Contents", [])]
        if not page["IsTruncated"]:
            break
        marker = seen[-1]
    assert seen == sorted(KEYS, key=lambda k: k.encode())


def test_query_bytes_that_are_not_utf8_are_an_s3_error(gateway, s3, bucket):
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=30)
    try:
        conn.putrequest("GET", f"/{bucket}?list-type=2&prefix=%FF%FE")
        conn.endheaders()
        response = conn.getresponse()
        assert response.status == 400 and b"<Code>InvalidArgument</Code>" in response.read()
    finally:
        conn.close()


def test_response_content_disposition_with_non_ascii(gateway, s3, bucket):
    s3.put_object(Bucket=bucket, Key="report", Body=b"x")
    disposition = "attachment; filename*=UTF-8''r\u00e9sum\u00e9.pdf"
    got = s3.get_object(Bucket=bucket, Key="report", ResponseContentDisposition=disposition)
    assert got["Body"].read() == b"x"
    # botocore decodes header bytes as latin-1: the UTF-8 bytes come back as sent.
    assert got["ContentDisposition"].encode("latin-1").decode("utf-8") == disposition
    url = s3.generate_presigned_url(
        "get_object",
        Params={"Bucket": bucket, "Key": "report", "ResponseContentDisposition": disposition},
    )
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=30)
    try:
        conn.request("GET", url.split(str(gateway.port), 1)[1])
        response = conn.getresponse()
        assert response.status == 200 and response.read() == b"x"
    finally:
        conn.close()
    assert quote("é") in url
