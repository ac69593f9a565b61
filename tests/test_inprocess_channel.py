"""The in-process channel answers as the gRPC transport does, over the same servicer.

Each scenario runs against one embedded store served both ways at once: the
gRPC socket (what pachd-style clients see) and the in-process channel (what
the gateway uses by default). Statuses and texts must be identical, streams
must honour cancellation, and a failed upload must commit nothing.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Iterator

import grpc
import pytest

from pachs3gw.pfs.client import open_channel
from pachs3gw.pfs.inprocess import InProcessChannel
from pachs3gw.pfsd import NON_BLOCKING_METHODS, start_server
from pachs3gw.pfsd._servicer import READ_PIECE
from pachs3gw.proto import auth_v2_pb2 as auth
from pachs3gw.proto import auth_v2_pb2_grpc as auth_grpc
from pachs3gw.proto import pfs_v2_pb2 as pfs
from pachs3gw.proto import pfs_v2_pb2_grpc as pfs_grpc


@pytest.fixture(scope="module")
def stubs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, pfs_grpc.APIStub]]:
    data = tmp_path_factory.mktemp("inprocess-channel")
    running = start_server(str(data), "127.0.0.1:0")
    inprocess = InProcessChannel(inline=NON_BLOCKING_METHODS)
    running.serve_on(inprocess.server)
    remote = open_channel(running.address)
    stub = pfs_grpc.APIStub(inprocess)
    repo = pfs.Repo(name="chan", type="user", project=pfs.Project(name="default"))
    stub.CreateRepo(pfs.CreateRepoRequest(repo=repo))
    stub.CreateBranch(pfs.CreateBranchRequest(branch=pfs.Branch(repo=repo, name="master")))
    stub.ModifyFile(iter([
        pfs.ModifyFileRequest(set_commit=_head()),
        pfs.ModifyFileRequest(add_file=pfs.AddFile(path="/dir/file", raw={"value": b"x" * (3 << 20)})),
    ]))
    yield {
        "grpc": pfs_grpc.APIStub(remote),
        "inprocess": stub,
        "auth-inprocess": auth_grpc.APIStub(inprocess),
        "channels": {"grpc": remote, "inprocess": inprocess},
    }
    remote.close()
    inprocess.close()
    running.stop()


def _repo(name: str = "chan") -> pfs.Repo:
    return pfs.Repo(name=name, type="user", project=pfs.Project(name="default"))


def _head(repo: str = "chan", branch: str = "master") -> pfs.Commit:
    r = _repo(repo)
    return pfs.Commit(repo=r, branch=pfs.Branch(repo=r, name=branch))


def _outcome(call: Callable[[], Any]) -> tuple[str, str]:
    try:
        result = call()
        if hasattr(result, "__next__"):
            list(result)
        return ("OK", "")
    except grpc.RpcError as e:
        return (e.code().name, e.details())


FAILING_CALLS: dict[str, Callable[[pfs_grpc.APIStub], Any]] = {
    "missing repo": lambda s: s.InspectRepo(pfs.InspectRepoRequest(repo=_repo("nope"))),
    "missing branch": lambda s: s.InspectBranch(
        pfs.InspectBranchRequest(branch=pfs.Branch(repo=_repo(), name="nope"))
    ),
    "missing file": lambda s: s.InspectFile(
        pfs.InspectFileRequest(file=pfs.File(commit=_head(), path="/absent"))
    ),
    "existing repo": lambda s: s.CreateRepo(pfs.CreateRepoRequest(repo=_repo())),
    "get a directory": lambda s: s.GetFile(
        pfs.GetFileRequest(file=pfs.File(commit=_head(), path="/dir"))
    ),
    "list a missing repo": lambda s: s.ListFile(
        pfs.ListFileRequest(file=pfs.File(commit=_head("nope"), path="/"))
    ),
    "first message not a commit": lambda s: s.ModifyFile(
        iter([pfs.ModifyFileRequest(delete_file=pfs.DeleteFile(path="/x"))])
    ),
}


@pytest.mark.parametrize("name", sorted(FAILING_CALLS))
def test_errors_are_the_same_over_both_transports(stubs: dict[str, Any], name: str) -> None:
    call = FAILING_CALLS[name]
    over_grpc = _outcome(lambda: call(stubs["grpc"]))
    in_process = _outcome(lambda: call(stubs["inprocess"]))
    assert over_grpc[0] != "OK"
    assert in_process == over_grpc


def test_an_unknown_method_is_unimplemented_over_both(stubs: dict[str, Any]) -> None:
    outcomes = {
        name: _outcome(lambda: channel.unary_unary(
            "/pfs_v2.API/NoSuchMethod",
            request_serializer=pfs.InspectRepoRequest.SerializeToString,
            response_deserializer=pfs.RepoInfo.FromString,
        )(pfs.InspectRepoRequest()))
        for name, channel in stubs["channels"].items()
    }
    assert outcomes["grpc"][0] == outcomes["inprocess"][0] == "UNIMPLEMENTED"


def test_who_am_i_without_auth_is_unimplemented_in_process(stubs: dict[str, Any]) -> None:
    code, details = _outcome(lambda: stubs["auth-inprocess"].WhoAmI(auth.WhoAmIRequest()))
    assert code == "UNIMPLEMENTED" and "not activated" in details


def test_reads_answer_on_the_calling_thread_and_writes_on_a_worker(stubs: dict[str, Any]) -> None:
    stub = stubs["inprocess"]
    inspect = stub.InspectFile.future(
        pfs.InspectFileRequest(file=pfs.File(commit=_head(), path="/dir/file"))
    )
    assert inspect.done() and inspect.result().size_bytes == 3 << 20
    ran_on: list[str] = []

    def body() -> Iterator[pfs.ModifyFileRequest]:
        ran_on.append(threading.current_thread().name)
        yield pfs.ModifyFileRequest(set_commit=_head())

    stub.ModifyFile.future(body()).result(10)
    assert ran_on[0].startswith("pfs-inprocess")


def test_get_file_streams_lazily_and_stops_when_cancelled(stubs: dict[str, Any]) -> None:
    call = stubs["inprocess"].GetFile(
        pfs.GetFileRequest(file=pfs.File(commit=_head(), path="/dir/file"))
    )
    first = next(call)
    assert len(first.value) == READ_PIECE  # one piece per next(), not the whole file
    call.cancel()
    with pytest.raises(grpc.RpcError) as raised:
        next(call)
    assert raised.value.code() == grpc.StatusCode.CANCELLED


def test_an_upload_whose_body_fails_commits_nothing(stubs: dict[str, Any]) -> None:
    stub = stubs["inprocess"]
    before = stub.InspectBranch(
        pfs.InspectBranchRequest(branch=pfs.Branch(repo=_repo(), name="master"))
    ).head.id

    def body() -> Iterator[pfs.ModifyFileRequest]:
        yield pfs.ModifyFileRequest(set_commit=_head())
        yield pfs.ModifyFileRequest(add_file=pfs.AddFile(path="/half", raw={"value": b"y" * 1000}))
        raise ValueError("the client went away")

    future = stub.ModifyFile.future(body())
    with pytest.raises(grpc.RpcError) as raised:
        future.result(10)
    assert raised.value.code() == grpc.StatusCode.CANCELLED
    after = stub.InspectBranch(
        pfs.InspectBranchRequest(branch=pfs.Branch(repo=_repo(), name="master"))
    ).head.id
    assert after == before
    assert _outcome(
        lambda: stub.InspectFile(pfs.InspectFileRequest(file=pfs.File(commit=_head(), path="/half")))
    )[0] == "NOT_FOUND"


def test_cancelling_an_upload_before_it_ends_commits_nothing(stubs: dict[str, Any]) -> None:
    stub = stubs["inprocess"]
    release = threading.Event()

    def body() -> Iterator[pfs.ModifyFileRequest]:
        yield pfs.ModifyFileRequest(set_commit=_head())
        yield pfs.ModifyFileRequest(add_file=pfs.AddFile(path="/cancelled", raw={"value": b"z"}))
        release.wait(10)

    future = stub.ModifyFile.future(body())
    assert future.cancel()
    release.set()
    assert future.cancelled()
    with pytest.raises(grpc.RpcError):
        future.result(10)
    assert _outcome(
        lambda: stub.InspectFile(
            pfs.InspectFileRequest(file=pfs.File(commit=_head(), path="/cancelled"))
        )
    )[0] == "NOT_FOUND"


def test_what_is_written_in_process_is_read_over_the_socket(stubs: dict[str, Any]) -> None:
    """What the gateway writes in process, Pachyderm's tools read over the socket."""
    stubs["inprocess"].ModifyFile(iter([
        pfs.ModifyFileRequest(set_commit=_head()),
        pfs.ModifyFileRequest(add_file=pfs.AddFile(path="/shared", raw={"value": b"both ways"})),
    ]))
    pieces = stubs["grpc"].GetFile(pfs.GetFileRequest(file=pfs.File(commit=_head(), path="/shared")))
    assert b"".join(p.value for p in pieces) == b"both ways"
