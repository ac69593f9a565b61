"""Talking to the gateway's embedded PFS server directly, as pachctl or a pipeline would."""

from __future__ import annotations

from google.protobuf.wrappers_pb2 import BytesValue

from pachs3gw.pfs import open_channel, refs
from pachs3gw.proto.conventions import END_OF_STREAM_PATH
from pachs3gw.proto import pfs_v2_pb2 as pfs
from pachs3gw.proto import pfs_v2_pb2_grpc as pfs_grpc


def _stub(gateway):  # type: ignore[no-untyped-def]
    channel = open_channel("unix:" + str(gateway.data_dir / "pfsd.sock"))
    return channel, pfs_grpc.APIStub(channel)


def make_output_branch(gateway, source_repo: str, output_repo: str) -> None:  # type: ignore[no-untyped-def]
    channel, stub = _stub(gateway)
    with channel:
        stub.CreateRepo(pfs.CreateRepoRequest(repo=refs.repo(output_repo)))
        stub.CreateBranch(pfs.CreateBranchRequest(
            branch=refs.branch(output_repo, "master"),
            provenance=[refs.branch(source_repo, "master")],
        ))


def put_file_directly(gateway, repo: str, branch: str, path: str, data: bytes) -> str:  # type: ignore[no-untyped-def]
    """Write a file with a plain ModifyFile; returns the hex PFS hash."""
    channel, stub = _stub(gateway)
    with channel:
        head = refs.branch_head(repo, branch)
        stub.ModifyFile(iter([
            pfs.ModifyFileRequest(set_commit=head),
            pfs.ModifyFileRequest(add_file=pfs.AddFile(path=path, raw=BytesValue(value=data))),
        ]))
        info = stub.InspectFile(pfs.InspectFileRequest(file=pfs.File(commit=head, path=path)))
        return info.hash.hex()


def history_of_commits(gateway, repo: str, branch: str, path: str, n: int) -> list[tuple[str, bytes | None]]:  # type: ignore[no-untyped-def]
    """``n`` commits on ``path``: written, overwritten, deleted, rewritten, in turn.

    Returns ``(commit ID, bytes or None for a deletion)`` oldest first.
    """
    channel, stub = _stub(gateway)
    out: list[tuple[str, bytes | None]] = []
    with channel:
        head = refs.branch_head(repo, branch)
        for i in range(n):
            requests = [pfs.ModifyFileRequest(set_commit=head)]
            data: bytes | None = None
            if i % 4 == 2:
                requests.append(pfs.ModifyFileRequest(delete_file=pfs.DeleteFile(path=path)))
            else:
                data = b"version %d " % i * (1 + i % 3)
                requests.append(pfs.ModifyFileRequest(delete_file=pfs.DeleteFile(path=path)))
                requests.append(pfs.ModifyFileRequest(
                    add_file=pfs.AddFile(path=path, raw=BytesValue(value=data))))
            # The no-op the gateway's own client ends with: the store commits at
            # once instead of waiting to see whether the stream was cancelled.
            requests.append(pfs.ModifyFileRequest(delete_file=pfs.DeleteFile(path=END_OF_STREAM_PATH)))
            stub.ModifyFile(iter(requests))
            info = stub.InspectBranch(pfs.InspectBranchRequest(branch=refs.branch(repo, branch)))
            out.append((info.head.id, data))
    return out
