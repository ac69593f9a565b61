"""The bench's load client: one long-lived process that serves every measurement.

It reads one JSON command per line on stdin and answers one JSON line on stdout, so the same
client process (same code, same interpreter state) measures every server. Small-object load is
a raw HTTP/1.1 keep-alive client on asyncio (uvloop when installed) that signs every request
with SigV4 itself: no per-request boto3 overhead. Large transfers use boto3's own
``upload_file``/``download_file`` (multipart, its default TransferConfig).

Run as ``python -m bench.client`` (the orchestrator does); every loop is bounded by a count
and a deadline.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import hmac
import json
import re
import sys
import time
import traceback
from typing import Any
from urllib.parse import quote

EMPTY_SHA = hashlib.sha256(b"").hexdigest()


def _q(s: str) -> str:
    return quote(s, safe="-_.~")


class Signer:
    """AWS Signature Version 4 for S3 (header auth), with the signing key cached per day."""

    def __init__(self, access: str, secret: str, region: str = "us-east-1") -> None:
        self.access = access
        self.secret = secret
        self.region = region
        self._day = ""
        self._key = b""
        self._sec = -1
        self._amzdate = ""

    def _dates(self) -> tuple[str, str]:
        now = int(time.time())
        if now != self._sec:
            self._sec = now
            self._amzdate = datetime.datetime.fromtimestamp(now, datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        day = self._amzdate[:8]
        if day != self._day:
            k = hmac.new(("AWS4" + self.secret).encode(), day.encode(), hashlib.sha256).digest()
            for part in (self.region, "s3", "aws4_request"):
                k = hmac.new(k, part.encode(), hashlib.sha256).digest()
            self._key, self._day = k, day
        return self._amzdate, day

    def headers(self, method: str, path: str, query: dict[str, str], host: str, payload_sha: str) -> str:
        amzdate, day = self._dates()
        cq = "&".join(f"{_q(k)}={_q(v)}" for k, v in sorted(query.items()))
        canonical = (f"{method}\n{path}\n{cq}\nhost:{host}\nx-amz-content-sha256:{payload_sha}\n"
                     f"x-amz-date:{amzdate}\n\nhost;x-amz-content-sha256;x-amz-date\n{payload_sha}")
        scope = f"{day}/{self.region}/s3/aws4_request"
        sts = f"AWS4-HMAC-SHA256\n{amzdate}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        sig = hmac.new(self._key, sts.encode(), hashlib.sha256).hexdigest()
        return (f"x-amz-date: {amzdate}\r\nx-amz-content-sha256: {payload_sha}\r\n"
                f"Authorization: AWS4-HMAC-SHA256 Credential={self.access}/{scope}, "
                f"SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={sig}\r\n")


    def presign(self, method: str, path: str, host: str, expires: int = 3600) -> str:
        """The path and query of a presigned (query-string SigV4) URL."""
        amzdate, day = self._dates()
        scope = f"{day}/{self.region}/s3/aws4_request"
        q = {"X-Amz-Algorithm": "AWS4-HMAC-SHA256", "X-Amz-Credential": f"{self.access}/{scope}",
             "X-Amz-Date": amzdate, "X-Amz-Expires": str(expires), "X-Amz-SignedHeaders": "host"}
        cq = "&".join(f"{_q(k)}={_q(v)}" for k, v in sorted(q.items()))
        canonical = f"{method}\n{path}\n{cq}\nhost:{host}\n\nhost\nUNSIGNED-PAYLOAD"
        sts = f"AWS4-HMAC-SHA256\n{amzdate}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        sig = hmac.new(self._key, sts.encode(), hashlib.sha256).hexdigest()
        return f"{path}?{cq}&X-Amz-Signature={sig}"


class HTTPError(Exception):
    pass


class Conn(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; one request in flight at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes, dict[str, str]]] | None = None
        self.head_request = False
        self.closed = False
        self._hdr: tuple[int, dict[str, str], int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            # a response delimited by close
            if self._hdr is not None and self._hdr[2] == -2:
                status, headers, _ = self._hdr
                self.waiter.set_result((status, bytes(self.buf), headers))
            else:
                self.waiter.set_exception(HTTPError(f"connection lost: {exc}"))

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.waiter is not None:
            self._parse()

    def _parse(self) -> None:
        buf = self.buf
        if self._hdr is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
            del buf[:end + 4]
            status = int(lines[0].split(" ", 2)[1])
            headers: dict[str, str] = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            if status == 100:
                return self._parse()
            if self.head_request or status in (204, 304) or 100 <= status < 200:
                length = 0
            elif "content-length" in headers:
                length = int(headers["content-length"])
            elif "chunked" in headers.get("transfer-encoding", "").lower():
                length = -1
            else:
                length = -2  # until close
            self._hdr = (status, headers, length)
        status, headers, length = self._hdr
        if length >= 0:
            if len(buf) < length:
                return
            body = bytes(buf[:length])
            del buf[:length]
        elif length == -1:
            body_parts = []
            pos = 0
            while True:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    return
                size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
                if size == 0:
                    end = buf.find(b"\r\n\r\n", eol)
                    if end < 0:
                        return
                    body = b"".join(body_parts)
                    del buf[:end + 4]
                    break
                if len(buf) < eol + 2 + size + 2:
                    return
                body_parts.append(bytes(buf[eol + 2:eol + 2 + size]))
                pos = eol + 2 + size + 2
        else:
            return
        self._hdr = None
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((status, body, headers))

    async def request(self, raw: bytes, body: bytes, head: bool) -> tuple[int, bytes, dict[str, str]]:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        self.waiter = loop.create_future()
        self.head_request = head
        self._hdr = None
        self.transport.write(raw + body if len(body) < 65536 else raw)
        if len(body) >= 65536:
            self.transport.write(body)
        if self.buf:
            self._parse()
        return await self.waiter


class Target:
    def __init__(self, cfg: dict[str, Any]) -> None:
        self.host = cfg.get("host", "127.0.0.1")
        self.port = int(cfg["port"])
        self.hostport = f"{self.host}:{self.port}"
        self.signer = Signer(cfg["access_key"], cfg["secret_key"], cfg.get("region", "us-east-1"))

    async def connect(self) -> Conn:
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_connection(Conn, self.host, self.port)
        return proto  # type: ignore[return-value]

    def build(self, method: str, path: str, query: dict[str, str] | None = None,
              body: bytes = b"", body_sha: str | None = None) -> bytes:
        query = query or {}
        sha = body_sha or (EMPTY_SHA if not body else hashlib.sha256(body).hexdigest())
        qs = ("?" + "&".join(f"{_q(k)}={_q(v)}" for k, v in sorted(query.items()))) if query else ""
        auth = self.signer.headers(method, path, query, self.hostport, sha)
        clen = f"Content-Length: {len(body)}\r\n" if (body or method in ("PUT", "POST")) else ""
        return (f"{method} {path}{qs} HTTP/1.1\r\nHost: {self.hostport}\r\n{auth}{clen}"
                f"User-Agent: pachs3gw-bench\r\n\r\n").encode()


def _pct(sorted_vals: list[float], p: float) -> float:
    if not sorted_vals:
        return float("nan")
    i = min(len(sorted_vals) - 1, max(0, int(round(p / 100.0 * (len(sorted_vals) - 1)))))
    return sorted_vals[i]


async def small_ops(cmd: dict[str, Any]) -> dict[str, Any]:
    """PUT/GET/HEAD/DELETE of keys ``{prefix}{i:07d}`` for i in [start, stop), N connections.

    PUT and DELETE visit each index once; GET and HEAD cycle over the range. Stops at the
    deadline or after ``max_ops``, whichever comes first.
    """
    t = Target(cmd)
    method = cmd["method"]
    bucket, prefix = cmd["bucket"], cmd["prefix"]
    start, stop = int(cmd["start"]), int(cmd["stop"])
    size = int(cmd.get("size", 0))
    conc = int(cmd.get("concurrency", 16))
    duration = float(cmd.get("duration", 5.0))
    max_ops = int(cmd.get("max_ops", 10**7))
    cycle = method in ("GET", "HEAD")
    expect_len = int(cmd.get("expect_len", -1))
    body = (b"0123456789abcdef" * (size // 16 + 1))[:size] if method == "PUT" else b""
    body_sha = hashlib.sha256(body).hexdigest()
    span = stop - start
    if span <= 0:
        return {"ops": 0, "errors": 0, "elapsed": 0.0, "note": "empty key range"}
    lat: list[float] = []
    errors = [0]
    first_error: list[str] = []
    state = {"next": 0}
    deadline = time.perf_counter() + duration

    async def worker() -> None:
        conn = await t.connect()
        try:
            while True:
                n = state["next"]
                if n >= max_ops or (not cycle and n >= span) or time.perf_counter() >= deadline:
                    return
                state["next"] = n + 1
                i = start + (n % span)
                path = f"/{bucket}/{prefix}{i:07d}"
                raw = t.build(method, path, None, body, body_sha)
                if conn.closed:
                    conn = await t.connect()
                t0 = time.perf_counter()
                try:
                    status, rbody, headers = await conn.request(raw, body, method == "HEAD")
                except HTTPError as exc:
                    errors[0] += 1
                    if not first_error:
                        first_error.append(str(exc))
                    conn = await t.connect()
                    continue
                dt = time.perf_counter() - t0
                ok = 200 <= status < 300 and (expect_len < 0 or method != "GET" or len(rbody) == expect_len)
                if ok:
                    lat.append(dt)
                else:
                    errors[0] += 1
                    if not first_error:
                        first_error.append(f"{method} {path} -> {status} {rbody[:200]!r}")
                if headers.get("connection", "").lower() == "close":
                    conn.transport.close()  # type: ignore[union-attr]
                    conn = await t.connect()
        finally:
            if conn.transport is not None:
                conn.transport.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conc)))
    elapsed = time.perf_counter() - t0
    lat.sort()
    return {
        "ops": len(lat), "errors": errors[0], "first_error": first_error[0] if first_error else None,
        "elapsed": elapsed, "rps": len(lat) / elapsed if elapsed > 0 else 0.0,
        "p50_ms": _pct(lat, 50) * 1e3, "p99_ms": _pct(lat, 99) * 1e3,
        "issued": state["next"],
    }


_KEY_RE = re.compile(rb"<Key>")
_TOKEN_RE = re.compile(rb"<NextContinuationToken>([^<]*)</NextContinuationToken>")
_TRUNC_RE = re.compile(rb"<IsTruncated>\s*true\s*</IsTruncated>")


def _unxml(b: bytes) -> str:
    return (b.decode().replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"')
            .replace("&apos;", "'").replace("&amp;", "&"))


async def list_all(cmd: dict[str, Any]) -> dict[str, Any]:
    """ListObjectsV2 of the whole bucket, page by page (max-keys 1000)."""
    t = Target(cmd)
    bucket = cmd["bucket"]
    max_pages = int(cmd.get("max_pages", 10000))
    deadline = time.perf_counter() + float(cmd.get("timeout", 300))
    conn = await t.connect()
    keys = pages = 0
    token: str | None = None
    t0 = time.perf_counter()
    page_times = []
    try:
        while pages < max_pages and time.perf_counter() < deadline:
            q = {"list-type": "2", "max-keys": "1000"}
            if token:
                q["continuation-token"] = token
            p0 = time.perf_counter()
            status, body, headers = await conn.request(t.build("GET", f"/{bucket}", q), b"", False)
            page_times.append(time.perf_counter() - p0)
            if status != 200:
                return {"error": f"list -> {status} {body[:300]!r}", "keys": keys, "pages": pages}
            keys += len(_KEY_RE.findall(body))
            pages += 1
            if conn.closed or headers.get("connection", "").lower() == "close":
                conn = await t.connect()
            if not _TRUNC_RE.search(body):
                break
            m = _TOKEN_RE.search(body)
            if not m:
                return {"error": "truncated listing without NextContinuationToken", "keys": keys}
            token = _unxml(m.group(1))
        else:
            return {"error": "listing did not finish in time", "keys": keys, "pages": pages}
    finally:
        conn.transport.close()  # type: ignore[union-attr]
    elapsed = time.perf_counter() - t0
    page_times.sort()
    return {"keys": keys, "pages": pages, "elapsed": elapsed, "keys_per_s": keys / elapsed,
            "page_p50_ms": _pct(page_times, 50) * 1e3}


async def list_page(cmd: dict[str, Any]) -> dict[str, Any]:
    """Time of one 1000-key ListObjectsV2 page starting after ``start_after`` (median of N)."""
    t = Target(cmd)
    conn = await t.connect()
    times = []
    counts = []
    try:
        for _ in range(int(cmd.get("repeat", 5))):
            q = {"list-type": "2", "max-keys": str(cmd.get("max_keys", 1000))}
            if cmd.get("start_after"):
                q["start-after"] = cmd["start_after"]
            p0 = time.perf_counter()
            status, body, headers = await conn.request(t.build("GET", f"/{cmd['bucket']}", q), b"", False)
            times.append(time.perf_counter() - p0)
            if status != 200:
                return {"error": f"list -> {status} {body[:300]!r}"}
            counts.append(len(_KEY_RE.findall(body)))
            if conn.closed or headers.get("connection", "").lower() == "close":
                conn = await t.connect()
    finally:
        conn.transport.close()  # type: ignore[union-attr]
    times.sort()
    return {"ms": _pct(times, 50) * 1e3, "min_ms": times[0] * 1e3, "max_ms": times[-1] * 1e3,
            "keys": counts[0]}


def _boto(cmd: dict[str, Any]):  # type: ignore[no-untyped-def]
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3", endpoint_url=f"http://{cmd.get('host', '127.0.0.1')}:{cmd['port']}",
        aws_access_key_id=cmd["access_key"], aws_secret_access_key=cmd["secret_key"],
        region_name=cmd.get("region", "us-east-1"),
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                      read_timeout=300, connect_timeout=10),
    )


def boto_transfer(cmd: dict[str, Any]) -> dict[str, Any]:
    import os
    c = _boto(cmd)
    t0 = time.perf_counter()
    if cmd["op"] == "boto_upload":
        c.upload_file(cmd["file"], cmd["bucket"], cmd["key"])
        size = os.path.getsize(cmd["file"])
    else:
        c.download_file(cmd["bucket"], cmd["key"], cmd["file"])
        size = os.path.getsize(cmd["file"])
    elapsed = time.perf_counter() - t0
    return {"bytes": size, "elapsed": elapsed, "mb_s": size / elapsed / 1e6}


def boto_call(cmd: dict[str, Any]) -> dict[str, Any]:
    c = _boto(cmd)
    if cmd["call"] == "create_bucket":
        try:
            c.create_bucket(Bucket=cmd["bucket"])
        except c.exceptions.BucketAlreadyOwnedByYou:
            pass
        return {"ok": True}
    if cmd["call"] == "head_object":
        r = c.head_object(Bucket=cmd["bucket"], Key=cmd["key"])
        return {"ok": True, "size": r["ContentLength"]}
    raise ValueError(cmd["call"])


def main() -> None:
    try:
        import uvloop  # type: ignore[import-not-found]
        uvloop.install()
        loop_name = "uvloop"
    except ImportError:
        loop_name = "asyncio"
    asyncio_ops = {"small": small_ops, "list_all": list_all, "list_page": list_page}
    print(json.dumps({"ready": True, "loop": loop_name, "python": sys.version.split()[0]}), flush=True)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            cmd = json.loads(line)
            op = cmd["op"]
            if op == "quit":
                break
            if op in asyncio_ops:
                result = asyncio.run(asyncio_ops[op](cmd))
            elif op in ("boto_upload", "boto_download"):
                result = boto_transfer(cmd)
            elif op == "boto_call":
                result = boto_call(cmd)
            else:
                result = {"error": f"unknown op {op}"}
        except Exception as exc:  # report, keep serving
            result = {"error": f"{type(exc).__name__}: {exc}"[:500],
                      "trace": traceback.format_exc()[-1500:]}
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
