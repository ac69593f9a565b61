"""Bad input gets a gRPC error with pachd's code and text, never a crash."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import grpc
import pytest

from pachs3gw.pfs import client as pfs_client
from pachs3gw.pfs import refs
from pachs3gw.proto import auth_v2_pb2 as auth
from pachs3gw.proto import pfs_v2_pb2 as pfs
from tests.pfsd.conftest import Pfsd, get, new_repo, put


def error_of(call, *args) -> grpc.RpcError:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as e:
        result = call(*args)
        if isinstance(result, Iterator):
            list(result)
    return e.value


def test_unknown_repo_branch_commit(api) -> None:
    e = error_of(api.InspectRepo, pfs.InspectRepoRequest(repo=refs.repo("nosuch")))
    assert (e.code(), e.details()) == (grpc.StatusCode.NOT_FOUND, "repo default/nosuch not found")
    name = new_repo(api)
    e = error_of(api.InspectBranch, pfs.InspectBranchRequest(branch=refs.branch(name, "nope")))
    assert (e.code(), e.details()) == (
        grpc.StatusCode.NOT_FOUND, f'branch "nope" not found in repo default/{name}'
    )
    missing = "0" * 32
    e = error_of(api.InspectCommit, pfs.InspectCommitRequest(commit=refs.commit(name, missing)))
    assert (e.code(), e.details()) == (
        grpc.StatusCode.NOT_FOUND, f"commit default/{name}@{missing} not found"
    )
    e = error_of(get, api, refs.commit(name, missing), "/x")
    assert e.code() == grpc.StatusCode.NOT_FOUND
    e = error_of(put, api, refs.branch_head("nosuch", "master"), {"/x": b"x"})
    assert e.code() == grpc.StatusCode.NOT_FOUND
    e = error_of(api.ListFile, pfs.ListFileRequest(file=refs.file(refs.branch_head(name, "master"), "/no")))
    assert e.code() == grpc.StatusCode.NOT_FOUND
    e = error_of(api.ListCommit, pfs.ListCommitRequest(repo=refs.repo("nosuch")))
    assert e.code() == grpc.StatusCode.NOT_FOUND


def test_invalid_names(api) -> None:
    for bad in ["has space", "dot.dot", "", "slash/x", "é"]:
        e = error_of(api.CreateRepo, pfs.CreateRepoRequest(repo=refs.repo(bad)))
        assert e.code() == grpc.StatusCode.UNKNOWN
        assert "only alphanumeric characters, underscores, and dashes" in e.details()
    name = new_repo(api)
    e = error_of(api.CreateBranch, pfs.CreateBranchRequest(branch=refs.branch(name, "a.b")))
    assert "only alphanumeric characters" in e.details()
    e = error_of(api.CreateProject, pfs.CreateProjectRequest(project=pfs.Project(name="x y")))
    assert e.code() == grpc.StatusCode.UNKNOWN


def test_modify_file_protocol_errors(api) -> None:
    name = new_repo(api)
    head = refs.branch_head(name, "master")
    e = error_of(api.ModifyFile, iter([pfs_client.add_bytes("/x", b"x")]))
    assert (e.code(), e.details()) == (grpc.StatusCode.UNKNOWN, "first message must be a commit")
    no_repo = pfs.Commit(id="master")  # neither repo nor branch.repo
    e = error_of(api.ModifyFile, iter([pfs_client.set_commit(no_repo)]))
    assert (e.code(), e.details()) == (grpc.StatusCode.UNKNOWN, "cannot pick commit with no repo")
    put(api, head, {"/ok": b"1"})
    finished = api.InspectBranch(pfs.InspectBranchRequest(branch=refs.branch(name, "master"))).head.id
    e = error_of(put, api, refs.commit(name, finished), {"/x": b"x"})
    assert (e.code(), e.details()) == (
        grpc.StatusCode.UNKNOWN, f"commit default/{name}@{finished} has already finished"
    )
    e = error_of(api.ModifyFile, iter([pfs_client.set_commit(head), pfs.ModifyFileRequest()]))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    e = error_of(api.ModifyFile, iter([pfs_client.set_commit(head), pfs_client.add_bytes("/a\x00b", b"x")]))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    e = error_of(api.ModifyFile, iter([
        pfs_client.set_commit(head), pfs_client.copy_file("/c", refs.file(head, "/missing"))
    ]))
    assert e.code() == grpc.StatusCode.NOT_FOUND
    # None of the failed streams left anything behind.
    paths = [f.file.path for f in api.ListFile(pfs.ListFileRequest(file=refs.file(head, "/")))]
    assert paths == ["/ok"]


def test_client_cancelling_mid_stream_commits_nothing(api) -> None:
    name = new_repo(api)
    head = refs.branch_head(name, "master")

    def requests() -> Iterator[pfs.ModifyFileRequest]:
        yield pfs_client.set_commit(head)
        yield pfs_client.add_bytes("/partial", b"x" * 1000)
        raise RuntimeError("the HTTP client went away")

    # grpcio may see the cancellation as a normal end of stream first: try often.
    for _ in range(30):
        with pytest.raises(Exception):
            api.ModifyFile(requests())
    put(api, head, {"/after": b"ok"})
    paths = [f.file.path for f in api.ListFile(pfs.ListFileRequest(file=refs.file(head, "/")))]
    assert paths == ["/after"]


def test_whoami_not_activated_without_tokens(pfsd) -> None:
    e = error_of(pfsd.auth.WhoAmI, auth.WhoAmIRequest())
    assert (e.code(), e.details()) == (grpc.StatusCode.UNIMPLEMENTED, "the auth service is not activated")


def test_tokens_activate_auth(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("secret-token alice\n")
    server = Pfsd(tmp_path / "data", tokens).start()
    try:
        ok = [("authn-token", "secret-token")]
        assert server.auth.WhoAmI(auth.WhoAmIRequest(), metadata=ok).username == "alice"
        e = error_of(server.auth.WhoAmI, auth.WhoAmIRequest())
        assert (e.code(), e.details()) == (
            grpc.StatusCode.UNAUTHENTICATED, "no authentication token (try logging in)"
        )
        with pytest.raises(grpc.RpcError) as bad:
            server.auth.WhoAmI(auth.WhoAmIRequest(), metadata=[("authn-token", "wrong")])
        assert bad.value.details() == (
            "provided auth token is corrupted or has expired (try logging in again)"
        )
        with pytest.raises(grpc.RpcError) as bad:
            server.api.CreateRepo(pfs.CreateRepoRequest(repo=refs.repo("x")))
        assert bad.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as bad:
            server.api.ModifyFile(iter([pfs_client.set_commit(refs.branch_head("x", "m"))]))
        assert bad.value.code() == grpc.StatusCode.UNAUTHENTICATED
        server.api.CreateRepo(pfs.CreateRepoRequest(repo=refs.repo("x")), metadata=ok)
        list(server.api.ListRepo(pfs.ListRepoRequest(), metadata=ok))
    finally:
        server.stop()


def test_add_file_from_url_is_refused_and_commits_nothing(api) -> None:
    """Also the deterministic way for a client to abort a stream it has started."""
    name = new_repo(api)
    head = refs.branch_head(name, "master")
    abort = pfs.ModifyFileRequest()
    abort.add_file.path = "/x"
    abort.add_file.url.URL = "pachs3gw-abort:"
    e = error_of(api.ModifyFile, iter([
        pfs_client.set_commit(head), pfs_client.add_bytes("/partial", b"x"), abort
    ]))
    assert e.code() == grpc.StatusCode.UNIMPLEMENTED
    assert list(api.ListFile(pfs.ListFileRequest(file=refs.file(head, "/")))) == []
