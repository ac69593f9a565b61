"""A real listening S3 site over the in-memory backend, for the HTTP layer's tests.

Each test gets a fresh :class:`S3Harness`: an ``S3Server`` over a
``MemoryBackend`` behind ``make_site`` on ``127.0.0.1:0``, its own thread
pool, and helpers for blocking clients (boto3, http.client), which run in
threads through ``deferToThread`` while the reactor serves them.  At
teardown every connection the site still holds is aborted and the pool
stopped, so nothing leaks into the next test.
"""

from __future__ import annotations

import http.client
import socket
from typing import Any, Callable, Iterator, TypeVar

import attrs
import boto3
import pytest
import pytest_twisted
from botocore.config import Config
from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread
from twisted.python.threadpool import ThreadPool

from pachs3gw.s3.app import S3Server
from pachs3gw.s3.site import S3Site, make_site
from pachs3gw.s3.testing import MemoryAuthenticator, MemoryBackend

T = TypeVar("T")

ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#: Small parts keep multipart tests fast; the rule is the same.
MIN_PART_SIZE = 64 * 1024


@attrs.define
class Response:
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes
    raw_headers: list[tuple[str, str]]


@attrs.define
class S3Harness:
    reactor: Any
    backend: MemoryBackend
    server: S3Server
    site: S3Site
    port: int
    pool: ThreadPool
    auth: MemoryAuthenticator
    channels: list[Any]
    tls: bool = False

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def boto(self, **config: Any) -> Any:
        """A boto3 S3 client for this server (path style, no retries)."""
        cfg = Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1, "mode": "standard"},
            **config,
        )
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
            config=cfg,
            verify=False,
        )

    def in_thread(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Deferred[T]:
        return deferToThread(fn, *args, **kwargs)

    def request_sync(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        *,
        chunked: bool = False,
    ) -> Response:
        """*Thread.* One raw HTTP request with http.client (path sent verbatim)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            hdrs = dict(headers or {})
            if chunked:
                hdrs["Transfer-Encoding"] = "chunked"
            elif body is not None and "Content-Length" not in hdrs:
                hdrs["Content-Length"] = str(len(body))
            for k, v in hdrs.items():
                conn.putheader(k, v)
            conn.endheaders()
            if body is not None:
                if chunked:
                    for i in range(0, len(body), 1000):
                        piece = body[i : i + 1000]
                        conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
                    conn.send(b"0\r\n\r\n")
                else:
                    conn.send(body)
            resp = conn.getresponse()
            data = resp.read()
            raw = [(k, v) for k, v in resp.getheaders()]
            return Response(
                resp.status, resp.reason, {k.lower(): v for k, v in raw}, data, raw
            )
        finally:
            conn.close()

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None, **kw: Any) -> Deferred[Response]:
        return deferToThread(self.request_sync, method, path, body, headers, **kw)

    def raw_exchange_sync(self, data: bytes, *, read_timeout: float = 5.0) -> bytes:
        """*Thread.* Send raw bytes, read until the server closes or goes quiet."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=read_timeout) as s:
            s.sendall(data)
            out = b""
            try:
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    out += chunk
            except socket.timeout:
                pass
            return out


_PEM: list[bytes] = []


def _self_signed_pem() -> bytes:
    """A throw-away certificate and key for 127.0.0.1 (made once per run)."""
    if not _PEM:
        import datetime as dt

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
        now = dt.datetime.now(dt.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256())
        )
        _PEM.append(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
            + cert.public_bytes(serialization.Encoding.PEM)
        )
    return _PEM[0]


@pytest.fixture(autouse=True)
def reactor_stays_clean() -> Iterator[None]:
    """After each test (and its harness teardown): no timers, no sockets left behind."""
    yield
    from twisted.internet.task import deferLater

    pytest_twisted.blockon(deferLater(_reactor, 0.02, lambda: None))
    calls = [c for c in _reactor.getDelayedCalls() if c.active()]
    assert not calls, f"delayed calls left: {calls}"
    sockets = [r for r in _reactor.getReaders() if hasattr(r, "getHost")]
    assert not sockets, f"sockets left: {sockets}"


@pytest.fixture
def make_harness() -> Iterator[Callable[..., S3Harness]]:
    harnesses: list[tuple[S3Harness, Any]] = []

    def make(
        *, secrets: dict[str, str] | None = None, tls: bool = False, **site_kwargs: Any
    ) -> S3Harness:
        pool = ThreadPool(minthreads=1, maxthreads=16, name="s3http-test")
        pool.start()
        backend = MemoryBackend(_reactor, pool, min_part_size=MIN_PART_SIZE)
        auth = MemoryAuthenticator(secrets)
        server = S3Server(_reactor, pool, backend, auth)
        site = make_site(server, _reactor, **site_kwargs)
        channels: list[Any] = []
        build = site.buildProtocol

        def tracking_build(addr: Any) -> Any:
            proto = build(addr)
            channels.append(proto)
            return proto

        site.buildProtocol = tracking_build  # type: ignore[method-assign]
        if tls:
            from twisted.internet import ssl

            cert = ssl.PrivateCertificate.loadPEM(_self_signed_pem())
            port = _reactor.listenSSL(0, site, cert.options(), interface="127.0.0.1")
        else:
            port = _reactor.listenTCP(0, site, interface="127.0.0.1")
        h = S3Harness(
            _reactor, backend, server, site, port.getHost().port, pool, auth, channels, tls
        )
        harnesses.append((h, port))
        return h

    yield make
    for h, port in harnesses:
        try:
            pytest_twisted.blockon(port.stopListening())
            for proto in h.channels:
                transport = getattr(getattr(proto, "_channel", proto), "transport", None)
                if transport is not None and transport.connected:
                    transport.abortConnection()
            # Let the aborts run (connectionLost wakes any body reader).
            d: Deferred[None] = Deferred()
            _reactor.callLater(0.01, d.callback, None)
            pytest_twisted.blockon(d)
        finally:
            h.pool.stop()


@pytest.fixture
def s3h(make_harness: Callable[..., S3Harness]) -> S3Harness:
    """An S3 server with auth off."""
    return make_harness()


@pytest.fixture
def s3h_auth(make_harness: Callable[..., S3Harness]) -> S3Harness:
    """An S3 server with auth on (ACCESS_KEY/SECRET_KEY)."""
    return make_harness(secrets={ACCESS_KEY: SECRET_KEY})


async def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``condition`` on the reactor until it holds (or fail after ``timeout``)."""
    from twisted.internet.task import deferLater

    deadline = _reactor.seconds() + timeout
    while not condition():
        if _reactor.seconds() > deadline:
            raise AssertionError("condition not reached in time")
        await deferLater(_reactor, 0.01, lambda: None)


def put_direct(h: S3Harness, bucket: str, key: str, data: bytes, **kw: Any) -> None:
    """Store an object in the memory backend without HTTP (reactor thread)."""
    h.backend.seed(bucket, key, data, **kw)
