"""Pachyderm tokens as access keys, and a backend that is down."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import ensureDeferred
from twisted.python.threadpool import ThreadPool
from zope.interface.verify import verifyObject

from pachs3gw.gateway import PachydermAuthenticator, PfsBackendFactory
from pachs3gw.pfs.client import PfsClient, open_channel
from pachs3gw.s3 import errors
from pachs3gw.s3.interfaces import IAuthenticator, IBackendFactory, ObjectMetadata

from .conftest import ROOT, Body
from .test_objects import failure_of

inline = pytest_twisted.inlineCallbacks
TOKEN = "s3cr3t-token-alice"


@pytest.fixture(scope="module")
def auth_client(tmp_path_factory: pytest.TempPathFactory, pool: ThreadPool) -> Iterator[PfsClient]:
    data = tmp_path_factory.mktemp("pfsd-auth")
    tokens = data / "tokens"
    tokens.write_text(f"{TOKEN} alice\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen(
        [sys.executable, "-m", "pachs3gw.pfsd", "--listen", "127.0.0.1:0",
         "--data-dir", str(data / "d"), "--tokens", str(tokens)],
        stdout=subprocess.PIPE, text=True, env=env, cwd=str(ROOT),
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("LISTENING "), line
    channel = open_channel(line.split()[1])
    yield PfsClient(channel, reactor, pool)
    channel.close()
    process.terminate()
    process.wait(10)


@inline
def test_tokens_are_access_keys_when_auth_is_on(auth_client: PfsClient) -> Any:
    authenticator = PachydermAuthenticator(auth_client, reactor)
    assert verifyObject(IAuthenticator, authenticator)
    assert (yield authenticator.probe()) is True
    assert (yield authenticator.secret_for(TOKEN)) == TOKEN
    for _ in range(2):  # the second answer comes from the cache
        e = yield ensureDeferred(failure_of(authenticator.secret_for("wrong")))
        assert isinstance(e, errors.InvalidAccessKeyId)
    factory = PfsBackendFactory(auth_client, authenticator=authenticator)
    assert verifyObject(IBackendFactory, factory)
    yield factory.backend_for(TOKEN).create_bucket("master.authed")
    names = [b.name for b in (yield factory.backend_for(TOKEN).list_buckets())]
    assert "master.authed" in names
    e = yield ensureDeferred(failure_of(factory.backend_for("wrong").list_buckets()))
    assert isinstance(e, (errors.InvalidAccessKeyId, errors.AccessDenied))


@inline
def test_any_key_passes_when_auth_is_off(client: PfsClient) -> Any:
    authenticator = PachydermAuthenticator(client, reactor)
    assert (yield authenticator.probe()) is False
    assert (yield authenticator.secret_for("anything")) == "anything"
    assert authenticator.enabled is False


@inline
def test_backend_down_is_service_unavailable_with_retry_after(pool: ThreadPool) -> Any:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens
    channel = open_channel(f"127.0.0.1:{port}")
    try:
        backend = PfsBackendFactory(PfsClient(channel, reactor, pool)).backend_for(None)
        for call in (
            lambda: backend.list_buckets(),
            lambda: backend.head_object("master.x", "k", None),
            lambda: backend.put_object("master.x", "k", Body(b"x"), ObjectMetadata()),
        ):
            e = yield ensureDeferred(failure_of(call()))
            assert isinstance(e, errors.ServiceUnavailable), e
            assert e.headers == {"Retry-After": "1"}
        e = yield ensureDeferred(
            failure_of(PachydermAuthenticator(PfsClient(channel, reactor, pool), reactor).secret_for("k"))
        )
        assert isinstance(e, errors.ServiceUnavailable)
    finally:
        channel.close()


def _dead_channel() -> Any:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens
    return open_channel(f"127.0.0.1:{port}")


@inline
def test_unsigned_requests_get_503_not_403_while_the_backend_is_down(pool: ThreadPool) -> Any:
    """The gateway started with the store down: it can't know whether auth is on."""
    import http.client

    from twisted.internet.threads import deferToThread

    from pachs3gw.s3.site import make_site
    from pachs3gw.service import make_resource

    channel = _dead_channel()
    client = PfsClient(channel, reactor, pool, timeout=2)
    authenticator = PachydermAuthenticator(client, reactor)
    assert (yield authenticator.probe()) is True  # fail closed: a guess
    port = reactor.listenTCP(0, make_site(make_resource(reactor, client, pool), reactor), interface="127.0.0.1")
    try:
        def get(path: str) -> tuple[int, str | None, bytes]:
            conn = http.client.HTTPConnection("127.0.0.1", port.getHost().port, timeout=30)
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.getheader("Retry-After"), response.read()

        for path in ("/", "/master.x", "/master.x/key"):
            status, retry_after, body = yield deferToThread(get, path)
            assert status == 503, body
            assert retry_after == "1"
            assert b"<Code>ServiceUnavailable</Code>" in body
    finally:
        yield port.stopListening()
        channel.close()


@inline
def test_unsigned_requests_are_access_denied_when_auth_is_on(auth_client: PfsClient) -> Any:
    authenticator = PachydermAuthenticator(auth_client, reactor)
    for _ in range(2):  # the second answer comes from what the first learnt
        e = yield ensureDeferred(failure_of(authenticator.check_anonymous()))
        assert isinstance(e, errors.AccessDenied)


@inline
def test_unsigned_requests_pass_when_auth_is_off(client: PfsClient) -> Any:
    authenticator = PachydermAuthenticator(client, reactor)
    yield authenticator.check_anonymous()
    assert authenticator.enabled is False
