"""Malformed raw HTTP requests, seeded: request lines, headers, query bytes, XML, ranges, names.

Shared by the fuzz test of the HTTP layer (``tests/s3http/test_fuzz.py``,
in-memory backend) and the one against the real gateway
(``tests/e2e/test_fuzz_gateway.py``).  Every request is complete on the
wire (headers end, the body matches its framing), so a server that doesn't
answer is a server that failed, not one waiting for more.  Writes never
name an existing object in a way that could succeed: the store must come
out unchanged.
"""

from __future__ import annotations

import base64
import hashlib
import random
import socket
from typing import Iterator
from urllib.parse import quote_from_bytes

#: Objects the target holds before the fuzz (bucket READ_BUCKET).
EXISTING = {"k0": b"0123456789", "dir/k1": b"abc", "caf\u00e9/k2": b"x" * 100}

_METHODS = [b"GET", b"HEAD", b"PUT", b"POST", b"DELETE", b"OPTIONS", b"PATCH", b"G\x00T", b"get",
            b"TRACE", b"CONNECT", b"X" * 40]
_VERSIONS = [b"HTTP/1.1", b"HTTP/1.0", b"HTTP/1.1", b"HTTP/2.0", b"HTTP/9", b"", b"HTTP/1.1 x", b"\xff"]
_PARAMS = [b"list-type", b"prefix", b"delimiter", b"max-keys", b"marker", b"start-after",
           b"continuation-token", b"versionId", b"partNumber", b"uploadId", b"uploads", b"delete",
           b"encoding-type", b"response-content-disposition", b"response-content-type",
           b"versions", b"key-marker", b"version-id-marker", b"max-uploads", b"acl", b"location",
           b"X-Amz-Algorithm", b"X-Amz-Credential", b"X-Amz-Signature", b"Signature", b"Expires"]
_HEADERS = [b"Range", b"If-Match", b"If-None-Match", b"If-Modified-Since", b"If-Unmodified-Since",
            b"Content-MD5", b"Content-Type", b"Content-Encoding", b"x-amz-content-sha256",
            b"x-amz-checksum-crc32", b"x-amz-sdk-checksum-algorithm", b"x-amz-trailer",
            b"x-amz-decoded-content-length", b"x-amz-copy-source-range", b"x-amz-metadata-directive",
            b"x-amz-meta-a", b"Authorization", b"x-amz-date", b"Date", b"Host", b"Expect",
            b"x-amz-checksum-mode", b"x-amz-copy-source-if-match", b"Transfer-Encoding"]
_VALUES = [b"", b"bytes=0-1", b"bytes=-5", b"bytes=9-", b"bytes=5-2", b"bytes=0-0,2-3", b"bytes=",
           b"bytes=-0", b"bytes=99999999999999999999-", b"items=0-1", b"*", b'"abc"', b"aws-chunked",
           b"STREAMING-AWS4-HMAC-SHA256-PAYLOAD", b"UNSIGNED-PAYLOAD", b"CRC32", b"REPLACE",
           b"ENABLED", b"AAAAAA==", b"Sun, 06 Nov 1994 08:49:37 GMT", b"12", b"-1", b"100-continue",
           b"AWS4-HMAC-SHA256 Credential=a/2/3/4/5, SignedHeaders=host, Signature=" + b"0" * 64,
           b"AWS x:y", b"\xff\xfe", b"caf\xc3\xa9", b"a" * 3000, b"chunked, gzip", b"\x00"]
_XML = [b"<Delete><Object><Key>zz-a</Key></Object></Delete>",
        b'<?xml version="1.0" encoding="EBCDIC"?><Delete/>',
        b'<?xml version="1.0" encoding="utf-32"?><Delete/>',
        b"<Delete><Object><Key>zz-" + b"a" * 2000 + b"</Key></Object></Delete>",
        b"<Delete><Quiet>maybe</Quiet><Object><Key>zz-b</Key><VersionId>nope</VersionId></Object></Delete>",
        b"<!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><Delete><Object><Key>&e;</Key></Object></Delete>",
        b"<Delete><Object><Key>zz-\xff\xfe</Key></Object></Delete>",
        b"<Delete>" + b"<Object><Key>zz-c</Key></Object>" * 1001 + b"</Delete>",
        b"<CompleteMultipartUpload><Part><PartNumber>0</PartNumber><ETag>x</ETag></Part></CompleteMultipartUpload>",
        b"<CreateBucketConfiguration><LocationConstraint>\x00</LocationConstraint></CreateBucketConfiguration>",
        b"<Delete", b"", b"\x00" * 10, b"<a>" * 200]


def _junk(rng: random.Random, n: int = 12) -> bytes:
    return bytes(rng.randrange(256) for _ in range(rng.randrange(n + 1)))


def _text(rng: random.Random, n: int = 12) -> bytes:
    """Mostly UTF-8 text (any code point but surrogates), sometimes raw bytes."""
    if rng.random() < 0.2:
        return _junk(rng, n)
    chars = [chr(rng.choice([rng.randrange(0x20, 0x7F), rng.randrange(0x80, 0x800), rng.randrange(0xE000, 0x10FFFF)]))
             for _ in range(rng.randrange(n + 1))]
    return "".join(chars).encode("utf-8")


def _maybe_encoded(rng: random.Random, data: bytes) -> bytes:
    """Percent-encoded as clients send it, or (rarely) raw bytes on the request line."""
    return quote_from_bytes(data, safe="/").encode() if rng.random() < 0.85 else data


def _query(rng: random.Random) -> bytes:
    parts = []
    for _ in range(rng.randrange(5)):
        name = rng.choice(_PARAMS) if rng.random() < 0.8 else _junk(rng)
        value = rng.choice(_VALUES + [_junk(rng), b"zz-" + _text(rng), _text(rng)])
        parts.append(_maybe_encoded(rng, name) + (b"=" + _maybe_encoded(rng, value) if rng.random() < 0.9 else b""))
    return b"&".join(parts)


def _path(rng: random.Random, read_bucket: bytes, void_bucket: bytes, method: bytes) -> bytes:
    writes = method not in (b"GET", b"HEAD")
    if writes:
        # Writes go where nothing can succeed: a bucket that does not exist
        # (with a key, so it is never a CreateBucket), or ?delete on the read
        # bucket with keys that don't exist (XML fuzz, below).
        bucket = void_bucket
        key = b"zz-" + _text(rng)
    else:
        bucket = rng.choice([read_bucket, void_bucket, b"", b"NOT_A_BUCKET", _junk(rng), b".." , b"a" * 70])
        key = rng.choice([k.encode() for k in EXISTING] + [b"", b"zz-" + _text(rng), b"../x", b"./x",
                          b"a//b", b"/lead", b".", b"%", b"%zz", b"%c3%28", b"k" * 1100])
    path = b"/" + _maybe_encoded(rng, bucket) + (b"/" + _maybe_encoded(rng, key) if key else b"")
    if rng.random() < 0.1:
        path = rng.choice([b"*", b"http://host" + path, b"", b"//" + path, path + b"#frag"])
    return path


def requests(seed: int, count: int, read_bucket: str, void_bucket: str) -> Iterator[bytes]:
    """``count`` complete raw requests (``Connection: close`` unless the head itself is fuzzed)."""
    rng = random.Random(seed)
    rb, vb = read_bucket.encode(), void_bucket.encode()
    for i in range(count):
        kind = i % 6
        method = rng.choice(_METHODS[:5]) if kind else rng.choice(_METHODS)
        path = _path(rng, rb, vb, method)
        query = _query(rng) if kind in (0, 2) or rng.random() < 0.3 else b""
        body = b""
        headers: list[tuple[bytes, bytes]] = [(b"Host", b"127.0.0.1")]
        if kind == 3 and method == b"POST":
            path, query = b"/" + rb, b"delete"
            body = rng.choice(_XML)
            if rng.random() < 0.7:  # S3 wants it on DeleteObjects; with it, the XML is parsed
                headers.append((b"Content-MD5", base64.b64encode(hashlib.md5(body).digest())))
        elif kind == 3:
            method, path = b"GET", b"/" + rb + b"/k0"
            headers.append((b"Range", rng.choice(_VALUES[:10] + [b"bytes=" + _junk(rng, 6)])))
        if kind in (1, 4) or rng.random() < 0.2:
            for _ in range(rng.randrange(1, 5)):
                name = rng.choice(_HEADERS) if rng.random() < 0.85 else _junk(rng, 8) or b"X"
                if name.lower() in (b"transfer-encoding", b"expect", b"content-length"):
                    continue  # framing is fuzzed below, where it stays complete
                headers.append((name, rng.choice(_VALUES + [_junk(rng)])))
        if method in (b"PUT", b"POST") and not body and rng.random() < 0.7:
            body = _junk(rng, 64)
        line = method + b" " + path + (b"?" + query if query else b"") + b" " + rng.choice(
            _VERSIONS if kind == 0 else _VERSIONS[:1]
        )
        if kind == 5 and body:
            chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[j : j + 7]), body[j : j + 7]) for j in range(0, len(body), 7))
            headers.append((b"Transfer-Encoding", b"chunked"))
            wire_body = chunks + b"0\r\n\r\n"
        else:
            length = len(body) if rng.random() < 0.9 else rng.choice([0, max(0, len(body) - 1)])
            headers.append((b"Content-Length", b"%d" % length))
            wire_body = body[:length]
        headers.append((b"Connection", b"close"))
        yield line + b"\r\n" + b"".join(n + b": " + v + b"\r\n" for n, v in headers) + b"\r\n" + wire_body


def exchange(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """*Thread.* Send one raw request; read the answer until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except OSError:
            pass
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            out += chunk
        return out


def status_of(answer: bytes) -> int:
    """The status of the first final response in ``answer`` (after any ``100 Continue``)."""
    while answer.startswith(b"HTTP/1.1 100"):
        answer = answer.partition(b"\r\n\r\n")[2]
    assert answer.startswith(b"HTTP/1."), f"no HTTP answer: {answer[:100]!r}"
    return int(answer.split(b" ", 2)[1])
