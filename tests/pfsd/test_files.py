"""Files: big streams, offsets, overwrite, delete, copy, listings, old commits."""

from __future__ import annotations

import hashlib
import os
import random

import grpc
import pytest

from pachs3gw.pfs import client as pfs_client
from pachs3gw.pfs import refs
from pachs3gw.proto import pfs_v2_pb2 as pfs
from tests.pfsd.conftest import MIB, get, new_repo, pfs_hash, put


def inspect(api, commit: pfs.Commit, path: str) -> pfs.FileInfo:
    return api.InspectFile(pfs.InspectFileRequest(file=refs.file(commit, path)))


def test_256_mib_file_in_1_mib_chunks_reads_back_at_offset_overwrite_delete(api) -> None:
    name = new_repo(api)
    head = refs.branch_head(name, "master")
    block = os.urandom(MIB)
    chunks = [block[i:] + block[:i] for i in range(256)]  # distinct 1 MiB chunks
    digest = hashlib.sha256()
    for c in chunks:
        digest.update(c)
    put(api, head, {"/big/file.bin": iter(chunks)})
    first = api.InspectBranch(pfs.InspectBranchRequest(branch=refs.branch(name, "master"))).head

    info = inspect(api, head, "/big/file.bin")
    assert info.size_bytes == 256 * MIB
    assert info.file_type == pfs.FILE
    offset = 100 * MIB + 12345
    tail = hashlib.sha256()
    size = 0
    for m in api.GetFile(pfs.GetFileRequest(file=refs.file(head, "/big/file.bin"), offset=offset)):
        tail.update(m.value)
        size += len(m.value)
        assert len(m.value) <= 4 * MIB
    assert size == 256 * MIB - offset
    expected_tail = hashlib.sha256()
    expected_tail.update(chunks[100][12345:])
    for c in chunks[101:]:
        expected_tail.update(c)
    assert tail.digest() == expected_tail.digest()

    put(api, head, {"/big/file.bin": b"small now"})
    assert get(api, head, "/big/file.bin") == b"small now"
    assert inspect(api, head, "/big/file.bin").hash == pfs_hash(b"small now")
    # The old commit still has the big file.
    old = refs.commit(name, first.id)
    assert inspect(api, old, "/big/file.bin").size_bytes == 256 * MIB
    assert get(api, old, "/big/file.bin", offset=256 * MIB - 10) == chunks[-1][-10:]

    api.ModifyFile(iter([pfs_client.set_commit(head), pfs_client.delete_file("/big/file.bin")]))
    with pytest.raises(grpc.RpcError) as e:
        inspect(api, head, "/big/file.bin")
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert e.value.details().startswith(f"file /big/file.bin not found in repo default/{name}")


def test_add_file_appends_and_empty_file_exists(api) -> None:
    name = new_repo(api)
    head = refs.branch_head(name, "master")
    api.ModifyFile(iter([
        pfs_client.set_commit(head),
        pfs_client.add_bytes("/f", b"abc"),
        pfs_client.add_bytes("/f", b"def"),
        pfs_client.add_empty("/empty"),
    ]))
    api.ModifyFile(iter([pfs_client.set_commit(head), pfs_client.add_bytes("/f", b"ghi")]))
    assert get(api, head, "/f") == b"abcdefghi"
    assert inspect(api, head, "/f").hash == pfs_hash(b"abcdefghi")
    assert get(api, head, "/empty") == b""
    assert inspect(api, head, "/empty").size_bytes == 0


def test_same_bytes_same_hash_however_assembled(api) -> None:
    """A PUT and a multipart-style CopyFile(append) assembly hash the same."""
    name = new_repo(api)
    parts_repo = new_repo(api)
    head = refs.branch_head(name, "master")
    parts_head = refs.branch_head(parts_repo, "master")
    data = os.urandom(5 * MIB + 777)
    put(api, parts_head, {"/p1": data[: 2 * MIB], "/p2": data[2 * MIB : 5 * MIB], "/p3": data[5 * MIB :]})
    put(api, head, {"/whole": data})
    api.ModifyFile(iter([
        pfs_client.set_commit(head),
        pfs_client.delete_file("/assembled"),
        pfs_client.copy_file("/assembled", refs.file(parts_head, "/p1"), append=True),
        pfs_client.copy_file("/assembled", refs.file(parts_head, "/p2"), append=True),
        pfs_client.copy_file("/assembled", refs.file(parts_head, "/p3"), append=True),
    ]))
    assert get(api, head, "/assembled") == data
    assert inspect(api, head, "/assembled").hash == inspect(api, head, "/whole").hash == pfs_hash(data)
    # Unaligned parts too (re-hashed server-side).
    api.ModifyFile(iter([
        pfs_client.set_commit(head),
        pfs_client.copy_file("/odd", refs.file(parts_head, "/p3")),
        pfs_client.copy_file("/odd", refs.file(head, "/whole"), append=True),
    ]))
    assert get(api, head, "/odd") == data[5 * MIB :] + data
    assert inspect(api, head, "/odd").hash == pfs_hash(data[5 * MIB :] + data)
    # Parts survive deleting the parts repo.
    api.DeleteRepo(pfs.DeleteRepoRequest(repo=refs.repo(parts_repo)))
    assert get(api, head, "/assembled") == data


def test_copy_directory_and_delete_directory(api) -> None:
    name = new_repo(api)
    head = refs.branch_head(name, "master")
    put(api, head, {"/d/a": b"a", "/d/sub/b": b"b", "/other": b"o"})
    api.ModifyFile(iter([pfs_client.set_commit(head), pfs_client.copy_file("/e", refs.file(head, "/d"))]))
    assert get(api, head, "/e/sub/b") == b"b"
    api.ModifyFile(iter([pfs_client.set_commit(head), pfs_client.delete_file("/d/")]))
    paths = [f.file.path for f in api.ListFile(pfs.ListFileRequest(file=refs.file(head, "/")))]
    assert paths == ["/e/", "/other"]


def test_get_file_on_directory_is_an_error(api) -> None:
    name = new_repo(api)
    head = refs.branch_head(name, "master")
    put(api, head, {"/dir/x": b"x"})
    with pytest.raises(grpc.RpcError) as e:
        get(api, head, "/dir")
    assert e.value.code() == grpc.StatusCode.UNKNOWN
    assert e.value.details() == "cannot get directory or non-regular file. Use GetFileTAR instead"
    assert inspect(api, head, "/dir").file_type == pfs.DIR


def test_list_10000_files_in_pages(api) -> None:
    name = new_repo(api)
    head = refs.branch_head(name, "master")
    paths = sorted(f"/files/{i:05d}-{random.random():.6f}" for i in range(10_000))

    def requests():
        yield pfs_client.set_commit(head)
        for p in paths:
            yield pfs_client.add_bytes(p, p.encode())

    api.ModifyFile(requests())
    put(api, head, {"/files/sub/deep/x": b"x", "/top": b"t"})
    expected = sorted(paths + ["/files/sub/"])
    got: list[str] = []
    marker = ""
    while True:
        req = pfs.ListFileRequest(file=refs.file(head, "/files"), number=1000)
        if marker:
            req.paginationMarker.CopyFrom(refs.file(head, marker))
        page = [f.file.path for f in api.ListFile(req)]
        if not page:
            break
        assert len(page) <= 1000
        got += page
        marker = page[-1]
    assert got == expected
    backward = [
        f.file.path
        for f in api.ListFile(pfs.ListFileRequest(file=refs.file(head, "/files"), number=5, reverse=True))
    ]
    assert backward == expected[::-1][:5]
    root = list(api.ListFile(pfs.ListFileRequest(file=refs.file(head, "/"))))
    assert [(f.file.path, f.file_type) for f in root] == [("/files/", pfs.DIR), ("/top", pfs.FILE)]
    one = [f.file.path for f in api.GlobFile(pfs.GlobFileRequest(commit=head, pattern="/files/00042*"))]
    assert one == [p for p in paths if p.startswith("/files/00042")]
    deep = [f.file.path for f in api.GlobFile(pfs.GlobFileRequest(commit=head, pattern="/files/sub**"))]
    assert deep == ["/files/sub/", "/files/sub/deep/", "/files/sub/deep/x"]
    top = [f.file.path for f in api.GlobFile(pfs.GlobFileRequest(commit=head, pattern="/*"))]
    assert top == ["/files/", "/top"]
    walked = [f.file.path for f in api.WalkFile(pfs.WalkFileRequest(file=refs.file(head, "/files/sub")))]
    assert walked == ["/files/sub/", "/files/sub/deep/", "/files/sub/deep/x"]


def test_get_file_tar(api) -> None:
    import io
    import tarfile

    name = new_repo(api)
    head = refs.branch_head(name, "master")
    put(api, head, {"/t/a": b"aaa", "/t/b/c": b"c" * 1000})
    raw = b"".join(m.value for m in api.GetFileTAR(pfs.GetFileRequest(file=refs.file(head, "/t"))))
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        assert tar.extractfile("t/b/c").read() == b"c" * 1000  # type: ignore[union-attr]
        assert tar.extractfile("t/a").read() == b"aaa"  # type: ignore[union-attr]


def test_end_of_stream_marker_is_a_no_op_that_commits(api) -> None:
    from pachs3gw.proto.conventions import END_OF_STREAM_PATH

    name = new_repo(api)
    head = refs.branch_head(name, "master")
    api.ModifyFile(iter([
        pfs_client.set_commit(head),
        pfs_client.add_bytes("/kept", b"data"),
        pfs_client.delete_file(END_OF_STREAM_PATH),
    ]))
    assert inspect(api, head, "/kept").size_bytes == 4
    listed = [f.file.path for f in api.ListFile(pfs.ListFileRequest(file=refs.file(head, "/")))]
    assert listed == ["/kept"]
