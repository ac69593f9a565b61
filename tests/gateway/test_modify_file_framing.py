"""``PfsClient.modify_file`` frames every stream by ``proto.conventions``.

A stream whose requests run out ends with the end-of-stream no-op; one whose
requests fail (a bad digest, a client gone) ends with the abort request, so
that no PFS server commits a part of it, and the Deferred fails with the
iterator's own exception. The wire is observed through a recording servicer
on the in-process channel; the effect, on the real server over both
transports.
"""

from __future__ import annotations

from typing import Any, Iterator

import grpc
import pytest_twisted
from google.protobuf import empty_pb2
from twisted.internet import reactor
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.logger import LogLevel, globalLogPublisher
from twisted.python.threadpool import ThreadPool

from pachs3gw.pfs import client as pfs_client
from pachs3gw.pfs import errors as pfs_errors
from pachs3gw.pfs import refs
from pachs3gw.pfs.client import PfsClient
from pachs3gw.pfs.inprocess import InProcessChannel
from pachs3gw.proto import conventions
from pachs3gw.proto import pfs_v2_pb2 as pfs
from pachs3gw.proto import pfs_v2_pb2_grpc as pfs_grpc

inline = pytest_twisted.inlineCallbacks
HEAD = refs.branch_head("framed", "master")


class Recorder(pfs_grpc.APIServicer):
    """A ModifyFile that keeps every request; refuses the abort request unless told not to."""

    def __init__(self, refuse_abort: bool = True) -> None:
        self.refuse_abort = refuse_abort
        self.streams: list[list[pfs.ModifyFileRequest]] = []

    def ModifyFile(self, request_iterator: Iterator[pfs.ModifyFileRequest], context: Any) -> Any:
        stream: list[pfs.ModifyFileRequest] = []
        self.streams.append(stream)
        for request in request_iterator:
            stream.append(request)
            if self.refuse_abort and request == conventions.abort_request():
                context.abort(grpc.StatusCode.NOT_FOUND, "repo default/_s3gateway_poison_ not found")
        return empty_pb2.Empty()


def recording_client(recorder: Recorder, pool: ThreadPool) -> tuple[PfsClient, InProcessChannel]:
    channel = InProcessChannel()
    pfs_grpc.add_APIServicer_to_server(recorder, channel.server)
    return PfsClient(channel, reactor, pool), channel


async def failure_of(d: Deferred[Any]) -> BaseException:
    try:
        await d
    except BaseException as e:  # noqa: BLE001
        return e
    raise AssertionError("expected a failure")


def requests_then(error: Exception | None) -> Iterator[pfs.ModifyFileRequest]:
    yield pfs_client.set_commit(HEAD)
    yield pfs_client.add_bytes("/half", b"y" * 1000)
    if error is not None:
        raise error


@inline
def test_a_stream_that_runs_out_ends_with_the_end_of_stream_no_op(pool: ThreadPool) -> Any:
    recorder = Recorder()
    client, channel = recording_client(recorder, pool)
    try:
        result = yield client.modify_file(requests_then(None))
    finally:
        channel.close()
    assert result is None
    assert recorder.streams == [[
        pfs_client.set_commit(HEAD),
        pfs_client.add_bytes("/half", b"y" * 1000),
        pfs_client.delete_file(conventions.END_OF_STREAM_PATH),
    ]]


@inline
def test_a_stream_whose_requests_fail_ends_with_the_abort_request_and_fails_with_their_error(
    pool: ThreadPool,
) -> Any:
    recorder = Recorder()
    client, channel = recording_client(recorder, pool)
    error = ValueError("bad digest")
    try:
        raised = yield ensureDeferred(failure_of(client.modify_file(requests_then(error))))
    finally:
        channel.close()
    assert raised is error
    assert recorder.streams == [[
        pfs_client.set_commit(HEAD),
        pfs_client.add_bytes("/half", b"y" * 1000),
        conventions.abort_request(),  # and no end-of-stream no-op after it
    ]]


@inline
def test_a_server_that_accepts_the_abort_request_is_logged_and_the_error_still_raised(
    pool: ThreadPool,
) -> Any:
    recorder = Recorder(refuse_abort=False)
    client, channel = recording_client(recorder, pool)
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    error = ValueError("client gone")
    try:
        raised = yield ensureDeferred(failure_of(client.modify_file(requests_then(error))))
    finally:
        globalLogPublisher.removeObserver(events.append)
        channel.close()
    assert raised is error
    assert [e["log_format"] for e in events if e.get("log_level") == LogLevel.error] == [
        "PFS accepted an aborted ModifyFile: a partial write may be visible"
    ]


@inline
def test_failing_requests_commit_nothing_on_the_real_server(client: PfsClient, bucket_name: str) -> Any:
    repo = bucket_name.split(".")[1]
    yield client.create_repo(refs.repo(repo))
    yield client.create_branch(refs.branch(repo, "master"))
    before = (yield client.inspect_branch(refs.branch(repo, "master"))).head.id
    head = refs.branch_head(repo, "master")

    def failing(n: int) -> Iterator[pfs.ModifyFileRequest]:
        yield pfs_client.set_commit(head)
        yield from pfs_client.put_file(f"/partial-{n}", [b"z" * 300_000])
        raise ValueError(f"body {n} failed")

    for n in range(10):
        raised = yield ensureDeferred(failure_of(client.modify_file(failing(n))))
        assert isinstance(raised, ValueError) and str(raised) == f"body {n} failed"
    assert (yield client.inspect_branch(refs.branch(repo, "master"))).head.id == before
    raised = yield ensureDeferred(
        failure_of(client.inspect_file(refs.file(head, "/partial-0")))
    )
    assert isinstance(raised, pfs_errors.FileNotFound)
