"""A few hundred malformed requests against the real gateway: an answer to each, no 5xx, store unchanged."""

from __future__ import annotations

import os

from tests.fuzz_requests import EXISTING, exchange, requests, status_of

#: S3's own answer for features a request names that S3 has and we don't.
NOT_IMPLEMENTED = 501


def _snapshot(s3, bucket: str):  # type: ignore[no-untyped-def]
    buckets = sorted(b["Name"] for b in s3.list_buckets()["Buckets"])
    objects = {}
    for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        head = s3.head_object(Bucket=bucket, Key=o["Key"])
        objects[o["Key"]] = (o["ETag"], o["Size"], head.get("VersionId"), head["Metadata"], head["ContentType"])
    return buckets, objects


def test_malformed_requests_get_an_answer_no_5xx_and_change_nothing(gateway, s3, bucket):
    for key, data in EXISTING.items():
        s3.put_object(Bucket=bucket, Key=key, Body=data, Metadata={"m": "1"})
    before = _snapshot(s3, bucket)
    void = f"master.nofuzz{os.getpid()}"
    failures = []
    sent = 0
    for raw in requests(seed=12, count=360, read_bucket=bucket, void_bucket=void):
        answer = exchange(gateway.port, raw)
        sent += 1
        try:
            status = status_of(answer)
        except AssertionError as e:
            failures.append((raw[:200], str(e)))
            continue
        if status >= 500 and status != NOT_IMPLEMENTED:
            failures.append((raw[:200], answer[:300]))
    assert sent == 360
    assert not failures, failures[:5]
    assert _snapshot(s3, bucket) == before
    for key, data in EXISTING.items():
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data
