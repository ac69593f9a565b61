"""A slow uploader does not hold its bucket: other writers go on while its body trickles in.

Every write to a branch is a step of that branch's next commit (one open
commit per branch), so a body streamed inside the commit would make every
other writer of the bucket wait for the slowest client. The gateway takes a
body into the commit only once it has all arrived (small bodies wait in
memory, larger ones are staged in the internal repo first).
"""

from __future__ import annotations

import socket
from typing import Any

import boto3
from botocore.config import Config

from tests.conftest import ACCESS_KEY, SECRET_KEY, RunningGateway


def _impatient_client(gateway: RunningGateway) -> Any:
    """One that gives up quickly instead of waiting behind the slow upload."""
    return boto3.client(
        "s3", endpoint_url=gateway.url, aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY, region_name="us-east-1",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=20),
    )


def _response_status(sock: socket.socket) -> int:
    data = b""
    while b"\r\n" not in data:
        piece = sock.recv(4096)
        assert piece, "connection closed without an answer"
        data += piece
    return int(data.split(b" ", 2)[1])


def test_other_writers_of_a_bucket_do_not_wait_for_a_slow_upload(
    gateway: RunningGateway, s3: Any, bucket: str
) -> None:
    fast = _impatient_client(gateway)
    for size in (100_000, 12_000_000):  # buffered in memory; staged
        body = bytes(range(256)) * (size // 256)
        sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=60)
        try:
            sock.sendall(
                f"PUT /{bucket}/slow-{size} HTTP/1.1\r\nHost: x\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body[: len(body) // 2]
            )
            # The slow client stalls here, half sent; others write the bucket meanwhile.
            for n in range(3):
                reply = fast.put_object(Bucket=bucket, Key=f"fast-{size}-{n}", Body=b"quick")
                assert reply["ResponseMetadata"]["HTTPStatusCode"] == 200
            fast.delete_object(Bucket=bucket, Key=f"fast-{size}-0")
            sock.sendall(body[len(body) // 2 :])
            assert _response_status(sock) == 200
        finally:
            sock.close()
        assert s3.get_object(Bucket=bucket, Key=f"slow-{size}")["Body"].read() == body
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert keys == {f"fast-{s}-{n}" for s in (100_000, 12_000_000) for n in (1, 2)} | {
        "slow-100000", "slow-12000000"
    }
