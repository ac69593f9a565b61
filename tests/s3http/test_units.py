"""Unit tests of the HTTP layer's pieces: interfaces provided, body queue, XML output, log event."""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from typing import Any

import pytest
from twisted.internet.interfaces import IPushProducer
from twisted.logger import formatEvent
from zope.interface.verify import verifyObject

from pachs3gw.s3 import errors, xml_output
from pachs3gw.s3.body import StreamingBody
from pachs3gw.s3.checksums import BodyVerifier
from pachs3gw.s3.chunked import AwsChunkedDecoder
from pachs3gw.s3.download import ObjectProducer
from pachs3gw.s3.interfaces import (
    BodyAborted,
    IAuthenticator,
    IBackend,
    IBackendFactory,
    IBodySource,
    IObjectReader,
    ListPage,
    ObjectInfo,
    ObjectSummary,
)
from pachs3gw.s3.testing import MemoryAuthenticator, MemoryBackend, MemoryObjectReader


class _SyncReactor:
    """callFromThread runs at once (tests drive both sides from one thread)."""

    def callFromThread(self, f: Any, *a: Any, **kw: Any) -> None:
        f(*a, **kw)


def _body(**kw: Any) -> tuple[StreamingBody, list[str]]:
    events: list[str] = []
    body = StreamingBody(
        _SyncReactor(),  # type: ignore[arg-type]
        pause=lambda: events.append("pause"),
        resume=lambda: events.append("resume"),
        want_body=lambda: events.append("want"),
        **kw,
    )
    return body, events


def test_memory_doubles_provide_their_interfaces() -> None:
    backend = MemoryBackend(None)
    assert verifyObject(IBackend, backend)
    assert verifyObject(IBackendFactory, backend)
    assert verifyObject(IAuthenticator, MemoryAuthenticator())
    info = ObjectInfo("k", 0, "e", datetime.now(timezone.utc))
    assert verifyObject(IObjectReader, MemoryObjectReader(backend, info, b""))


def test_streaming_body_provides_ibodysource_and_pauses_above_high_water() -> None:
    body, events = _body(high_water=10, low_water=6)
    assert verifyObject(IBodySource, body)
    body.configure(decoder=None, verifier=BodyVerifier.from_headers({}), expected_length=None)
    body.feed(b"123456")
    body.feed(b"789012")
    assert events == ["pause"]
    it = body.chunks()
    assert next(it) == b"123456"
    assert events == ["pause", "want", "resume"]
    body.end()
    assert list(it) == [b"789012"]
    import hashlib

    assert body.md5_hex() == hashlib.md5(b"123456789012").hexdigest()


def test_streaming_body_raises_bad_digest_instead_of_ending() -> None:
    import base64
    import hashlib

    body, _ = _body()
    md5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    body.configure(decoder=None, verifier=BodyVerifier.from_headers({"content-md5": md5}), expected_length=None)
    body.feed(b"data")
    body.end()
    with pytest.raises(errors.BadDigest):
        list(body.chunks())
    assert isinstance(body.error, errors.BadDigest)


def test_streaming_body_decodes_aws_chunked() -> None:
    body, _ = _body()
    body.configure(decoder=AwsChunkedDecoder(expected_length=4), verifier=BodyVerifier.from_headers({}), expected_length=4)
    body.feed(b"4\r\nda")
    body.feed(b"ta\r\n0\r\n\r\n")
    body.end()
    assert b"".join(body.chunks()) == b"data"


def test_streaming_body_abort_wakes_a_waiting_reader() -> None:
    body, _ = _body()
    body.configure(decoder=None, verifier=BodyVerifier.from_headers({}), expected_length=None)
    raised: list[BaseException] = []

    def read() -> None:
        try:
            list(body.chunks())
        except BaseException as e:
            raised.append(e)

    t = threading.Thread(target=read)
    t.start()
    body.feed(b"abc")
    body.abort()
    t.join(5)
    assert not t.is_alive()
    assert isinstance(raised[0], BodyAborted)


def test_short_body_is_incomplete() -> None:
    body, _ = _body()
    body.configure(decoder=None, verifier=BodyVerifier.from_headers({}), expected_length=10)
    body.feed(b"abc")
    body.end()
    with pytest.raises(errors.IncompleteBody):
        list(body.chunks())


def test_object_producer_is_a_push_producer() -> None:
    p = ObjectProducer(None, None, None, None, 0, 0)  # type: ignore[arg-type]
    assert verifyObject(IPushProducer, p)


def test_error_xml_escapes_and_orders_elements() -> None:
    body = xml_output.error("NoSuchKey", "a <b> & c", "/b/k\r", "RID", {"Key": "k&"})
    root = ET.fromstring(body)
    assert root.findtext("Resource") == "/b/k\r"
    # Characters XML 1.0 can't carry are referenced, as S3 does.
    assert b"&#x1;" in xml_output.error("C", "m", "/\x01", "RID")
    assert [c.tag for c in root] == ["Code", "Message", "Key", "Resource", "RequestId"]
    assert root.findtext("Message") == "a <b> & c"
    assert root.findtext("Key") == "k&"


def test_list_v2_url_encoding_keeps_slashes_and_encodes_the_rest() -> None:
    now = datetime(2020, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
    page = ListPage([ObjectSummary("a b/c+d", 1, "abc", now)], ["p q/"], False)
    body = xml_output.list_bucket_result_v2(
        "bkt", page, prefix="p q", delimiter="/", max_keys=1000, encoding_type="url",
        continuation_token=None, next_continuation_token=None, start_after=None, fetch_owner=False,
    )
    text = body.decode()
    assert "<Key>a%20b/c%2Bd</Key>" in text
    assert "<Prefix>p%20q/</Prefix>" in text
    assert "<LastModified>2020-01-02T03:04:05.678Z</LastModified>" in text
    assert "<ETag>&quot;abc&quot;</ETag>" in text
    assert "<KeyCount>2</KeyCount>" in text


def test_request_log_event_renders_the_line_and_keeps_the_fields() -> None:
    import time
    from types import SimpleNamespace

    from twisted.internet.address import IPv4Address
    from twisted.logger import Logger, LogPublisher

    from pachs3gw.s3.access_log import log_request

    events: list[dict[str, Any]] = []
    publisher = LogPublisher(events.append)
    request = SimpleNamespace(
        stats=SimpleNamespace(
            bucket="b", key="k", operation="put_object", error_code="SlowDown",
            request_id="RID", access_key="",
        ),
        method=b"PUT", code=503, startedWriting=True, finished=True,
        body=SimpleNamespace(received=3), sentLength=0, started_at=time.monotonic() - 0.0015,
        getHeader=lambda name: b"Boto3/1.36" if name == b"user-agent" else None,
        getClientAddress=lambda: IPv4Address("TCP", "127.0.0.1", 5000),
    )
    log_request(request, aborted=True, log=Logger(observer=publisher))  # type: ignore[arg-type]
    [event] = events
    text = formatEvent(event)
    assert text.startswith("PUT /b/k put_object 503 SlowDown (connection lost) in=3 out=0 ")
    assert text.endswith("ms id=RID from=127.0.0.1:5000 ua='Boto3/1.36'")
    assert (event["operation"], event["status"], event["error_code"], event["bytes_in"]) == (
        "put_object", 503, "SlowDown", 3,
    )
    assert event["client"] == "127.0.0.1:5000" and event["aborted"] is True


def _fake_request(method: bytes, uri: bytes, headers: dict[bytes, bytes]) -> Any:
    from twisted.web.http_headers import Headers

    class R:
        pass

    r = R()
    r.method = method  # type: ignore[attr-defined]
    r.uri = uri  # type: ignore[attr-defined]
    h = Headers()
    for k, v in headers.items():
        h.addRawHeader(k, v)
    r.requestHeaders = h  # type: ignore[attr-defined]
    r.s3_mount = b""  # type: ignore[attr-defined]
    return r


def test_routing_never_raises_anything_but_s3_errors() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from pachs3gw.s3.app import S3Server

    server = S3Server(None, None, MemoryBackend(None), MemoryAuthenticator())  # type: ignore[arg-type]
    methods = st.sampled_from([b"GET", b"PUT", b"POST", b"DELETE", b"HEAD", b"PATCH", b"OPTIONS"])
    words = st.sampled_from(
        [b"uploads", b"uploadId=x", b"partNumber=3", b"delete", b"acl", b"versioning", b"location",
         b"list-type=2", b"tagging", b"versions", b"", b"%FF", b"a=%", b"=", b"&"]
    )

    @settings(max_examples=300, deadline=None)
    @given(methods, st.binary(max_size=40), st.lists(words, max_size=4), st.booleans())
    def check(method: bytes, path: bytes, query: list[bytes], copy: bool) -> None:
        uri = b"/" + path.replace(b"?", b"%3F").replace(b"\r", b"").replace(b"\n", b"")
        if query:
            uri += b"?" + b"&".join(query)
        headers = {b"x-amz-copy-source": b"/b/k"} if copy else {}
        try:
            call = server._parse_call(_fake_request(method, uri, headers), "RID")
            server._route(call)
        except errors.S3Error:
            pass

    check()


def test_streaming_body_arrived_says_whether_the_whole_body_waits_in_memory() -> None:
    """A backend waits for ``arrived()`` before it takes a branch's commit (issue 12.2 follow-up)."""
    from pachs3gw.s3.interfaces import BodyAborted

    outcomes: list[object] = []

    whole, events = _body(high_water=10, low_water=6)
    whole.arrived().addBoth(outcomes.append)
    assert events == ["want"]  # asked for: 100 Continue goes out
    assert outcomes == []
    whole.feed(b"12345")
    whole.end()
    assert outcomes == [True]
    assert b"".join(whole.chunks()) == b"12345"
    assert whole.arrived().result is True  # already here

    big, _ = _body(high_water=10, low_water=6)
    big.arrived().addBoth(outcomes.append)
    big.feed(b"x" * 11)  # over the buffer: it will not all wait here
    assert outcomes[-1] is False
    assert big.arrived().result is False

    gone, _ = _body(high_water=10, low_water=6)
    gone.arrived().addBoth(outcomes.append)
    gone.abort()
    assert outcomes[-1].check(BodyAborted)  # type: ignore[attr-defined]
