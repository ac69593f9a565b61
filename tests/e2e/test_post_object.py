"""Browser form uploads (POST Object, issue 13 point 7) through a real gateway.

The forms are what boto3's ``generate_presigned_post`` gives a web page,
posted with ``requests`` as a browser would (multipart/form-data, the file
last). Signatures are checked in ``test_auth_and_tls.py`` (a gateway with
auth on); here auth is off, so these check the policy's conditions.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

import requests


def post(gateway, bucket, form, data, filename="f.bin", **kwargs):  # type: ignore[no-untyped-def]
    return requests.post(
        f"{gateway.url}/{bucket}", data=form, files={"file": (filename, data)},
        allow_redirects=False, timeout=60, **kwargs,
    )


def code(response) -> str:  # type: ignore[no-untyped-def]
    return ET.fromstring(response.content).findtext("Code") or ""


def test_presigned_post_uploads_the_file_with_its_headers(s3, bucket, gateway):
    form = s3.generate_presigned_post(
        bucket, "uploads/${filename}",
        Fields={"Content-Type": "text/plain", "x-amz-meta-colour": "blue"},
        Conditions=[
            ["starts-with", "$key", "uploads/"],
            {"Content-Type": "text/plain"},
            {"x-amz-meta-colour": "blue"},
            ["content-length-range", 1, 1024 * 1024],
        ],
    )
    r = post(gateway, bucket, form["fields"], b"hello form", filename="hi.txt")
    assert r.status_code == 204, r.text
    assert r.headers["ETag"] == '"%s"' % hashlib.md5(b"hello form").hexdigest()
    got = s3.get_object(Bucket=bucket, Key="uploads/hi.txt")
    assert got["Body"].read() == b"hello form"
    assert got["ContentType"] == "text/plain" and got["Metadata"] == {"colour": "blue"}
    assert got["VersionId"] == r.headers["x-amz-version-id"]


def test_success_action_status_201_and_redirect(s3, bucket, gateway):
    form = s3.generate_presigned_post(
        bucket, "s201", Fields={"success_action_status": "201"},
        Conditions=[{"success_action_status": "201"}],
    )
    r = post(gateway, bucket, form["fields"], b"x")
    assert r.status_code == 201
    doc = ET.fromstring(r.content)
    assert doc.findtext("Key") == "s201" and doc.findtext("Bucket") == bucket
    form = s3.generate_presigned_post(
        bucket, "redir",
        Fields={"success_action_redirect": "http://example.invalid/done"},
        Conditions=[{"success_action_redirect": "http://example.invalid/done"}],
    )
    r = post(gateway, bucket, form["fields"], b"y")
    assert r.status_code == 303
    assert r.headers["Location"].startswith("http://example.invalid/done?bucket=")
    assert "key=redir" in r.headers["Location"]


def test_policy_conditions_are_enforced_and_nothing_is_written(s3, bucket, gateway):
    form = s3.generate_presigned_post(
        bucket, "limited", Conditions=[["content-length-range", 10, 100]]
    )
    too_big = post(gateway, bucket, form["fields"], os.urandom(101))
    assert too_big.status_code == 400 and code(too_big) == "EntityTooLarge"
    too_small = post(gateway, bucket, form["fields"], b"123")
    assert too_small.status_code == 400 and code(too_small) == "EntityTooSmall"
    # The key is fixed by the policy: another one is refused.
    fields = dict(form["fields"], key="elsewhere")
    other = post(gateway, bucket, fields, b"0123456789")
    assert other.status_code == 403 and code(other) == "AccessDenied"
    # A field the policy does not name is refused.
    extra = post(gateway, bucket, dict(form["fields"], **{"x-amz-meta-sneaky": "1"}), b"0123456789")
    assert extra.status_code == 403 and "Extra input fields" in extra.text
    # Another bucket than the policy's.
    s3.create_bucket(Bucket=bucket + "b")
    wrong = post(gateway, bucket + "b", form["fields"], b"0123456789")
    assert wrong.status_code == 403
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)
    ok = post(gateway, bucket, form["fields"], b"0123456789")
    assert ok.status_code == 204
    assert s3.get_object(Bucket=bucket, Key="limited")["Body"].read() == b"0123456789"


def test_an_expired_policy_is_refused(s3, bucket, gateway):
    expired = datetime.now(timezone.utc) - timedelta(minutes=1)
    policy = base64.b64encode(json.dumps({
        "expiration": expired.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "conditions": [{"bucket": bucket}, {"key": "late"}],
    }).encode()).decode()
    r = post(gateway, bucket, {"key": "late", "policy": policy}, b"x")
    assert r.status_code == 403 and "expired" in r.text
    r = post(gateway, bucket, {"key": "late", "policy": "not base64 json"}, b"x")
    assert r.status_code == 400 and code(r) == "InvalidPolicyDocument"


def test_malformed_forms_are_s3_errors(gateway, bucket):
    r = requests.post(f"{gateway.url}/{bucket}", data=b"not a form", timeout=30,
                      headers={"Content-Type": "text/plain"})
    assert r.status_code == 412
    r = requests.post(f"{gateway.url}/{bucket}", data={"key": "k"}, files={"other": ("a", b"1")}, timeout=30)
    assert r.status_code == 400 and code(r) == "InvalidArgument"
    r = requests.post(f"{gateway.url}/{bucket}", files={"file": ("a", b"1")}, timeout=30)
    assert r.status_code == 400 and "key" in r.text
    r = requests.post(
        f"{gateway.url}/{bucket}", data=b"--xx\r\ngarbage", timeout=30,
        headers={"Content-Type": "multipart/form-data; boundary=xx"},
    )
    assert r.status_code == 400 and code(r) == "MalformedPOSTRequest"


def test_a_large_file_streams_through(s3, bucket, gateway):
    data = os.urandom(24 * 1024 * 1024)
    form = s3.generate_presigned_post(bucket, "big")
    r = post(gateway, bucket, form["fields"], data)
    assert r.status_code == 204
    head = s3.head_object(Bucket=bucket, Key="big")
    assert head["ContentLength"] == len(data)
    assert head["ETag"] == '"%s"' % hashlib.md5(data).hexdigest()
