"""DiffFile, GetVersion, and every way pachd accepts to name a commit."""

from __future__ import annotations

import time
from typing import Optional

import grpc
import pytest
from google.protobuf import empty_pb2

from pachs3gw.pfs import client as pfs_client
from pachs3gw.pfs import refs
from pachs3gw.proto import pfs_v2_pb2 as pfs
from pachs3gw.proto import versionpb_v2_pb2_grpc
from tests.pfsd.conftest import Pfsd, get, new_repo, pfs_hash, put


def head_id(api, name: str, branch: str = "master") -> str:  # type: ignore[no-untyped-def]
    return api.InspectBranch(pfs.InspectBranchRequest(branch=refs.branch(name, branch))).head.id


def diff(api, new: pfs.Commit, path: str = "/", old: Optional[pfs.Commit] = None,  # type: ignore[no-untyped-def]
         old_path: str = "/") -> list[tuple[str, str, str]]:
    """(path, old hash hex or '-', new hash hex or '-') per response; dirs show 'dir'."""
    request = pfs.DiffFileRequest(new_file=refs.file(new, path))
    if old is not None:
        request.old_file.CopyFrom(refs.file(old, old_path))

    def side(info: pfs.FileInfo, present: bool) -> str:
        if not present:
            return "-"
        return "dir" if info.file_type == pfs.DIR else info.hash.hex()

    out = []
    for r in api.DiffFile(request):
        path_ = r.new_file.file.path if r.HasField("new_file") else r.old_file.file.path
        out.append((path_, side(r.old_file, r.HasField("old_file")),
                    side(r.new_file, r.HasField("new_file"))))
    return out


def h(data: bytes) -> str:
    return pfs_hash(data).hex()


def test_diff_file_against_parent_reports_files_and_directories_like_pachd(api) -> None:
    name = new_repo(api)
    head = refs.branch_head(name, "master")
    put(api, head, {"/a.txt": b"a", "/d/x": b"x", "/d/y": b"y", "/e/z": b"z"})
    first = head_id(api, name)
    # The first write: everything is new, "/" included.
    assert diff(api, refs.commit(name, first)) == [
        ("/", "-", "dir"), ("/a.txt", "-", h(b"a")), ("/d/", "-", "dir"),
        ("/d/x", "-", h(b"x")), ("/d/y", "-", h(b"y")), ("/e/", "-", "dir"), ("/e/z", "-", h(b"z")),
    ]
    # Change one file, rewrite one with the same bytes, delete a whole directory, add one.
    api.ModifyFile(iter([
        pfs_client.set_commit(head),
        *pfs_client.put_file("/d/x", [b"x2"]),
        *pfs_client.put_file("/d/y", [b"y"]),
        pfs_client.delete_file("/e/z"),
        *pfs_client.put_file("/f/g/h", [b"h"]),
    ]))
    second = head_id(api, name)
    assert diff(api, refs.commit(name, second)) == [
        ("/", "dir", "dir"), ("/d/", "dir", "dir"), ("/d/x", h(b"x"), h(b"x2")),
        ("/e/", "dir", "-"), ("/e/z", h(b"z"), "-"),
        ("/f/", "-", "dir"), ("/f/g/", "-", "dir"), ("/f/g/h", "-", h(b"h")),
    ]
    # Under a path: only that path and below, no "/".
    assert diff(api, refs.commit(name, second), "/d") == [
        ("/d/", "dir", "dir"), ("/d/x", h(b"x"), h(b"x2")),
    ]
    # A commit with no change diffs to nothing; the same commit against itself too.
    put(api, head, {"/d/y": b"y"})
    assert diff(api, head) == []
    assert diff(api, refs.commit(name, first), old=refs.commit(name, first)) == []
    # Against a given older commit (backwards too).
    assert diff(api, refs.commit(name, first), old=refs.commit(name, second)) == [
        ("/", "dir", "dir"), ("/d/", "dir", "dir"), ("/d/x", h(b"x2"), h(b"x")),
        ("/e/", "-", "dir"), ("/e/z", "-", h(b"z")),
        ("/f/", "dir", "-"), ("/f/g/", "dir", "-"), ("/f/g/h", h(b"h"), "-"),
    ]


def test_diff_file_across_branches_and_a_missing_old_commit(api) -> None:
    name = new_repo(api)
    master = refs.branch_head(name, "master")
    put(api, master, {"/shared": b"s", "/m": b"1"})
    base = head_id(api, name)
    api.CreateBranch(pfs.CreateBranchRequest(
        branch=refs.branch(name, "dev"), head=refs.commit(name, base)))
    dev = refs.branch_head(name, "dev")
    put(api, dev, {"/dev-only": b"d"})
    put(api, master, {"/m": b"2"})
    # dev's head against master's head: the two forks since the base.
    assert diff(api, dev, old=master) == [
        ("/", "dir", "dir"), ("/dev-only", "-", h(b"d")), ("/m", h(b"2"), h(b"1")),
    ]
    # The first commit of a fork against its parent (the base on master).
    assert diff(api, dev) == [("/", "dir", "dir"), ("/dev-only", "-", h(b"d"))]
    # old_file without a commit: compared with nothing.
    request = pfs.DiffFileRequest(new_file=refs.file(dev, "/"), old_file=pfs.File(path="/"))
    assert len(list(api.DiffFile(request))) == 4
    with pytest.raises(grpc.RpcError) as e:
        list(api.DiffFile(pfs.DiffFileRequest(new_file=refs.file(refs.commit(name, "0" * 32), "/"))))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_diff_file_costs_what_changed_not_the_size_of_the_tree(api) -> None:
    name = new_repo(api)
    head = refs.branch_head(name, "master")
    put(api, head, {f"/bulk/{i:05d}": b"x" for i in range(20000)})
    for i in range(50):
        put(api, head, {f"/hist/{i}": b"h"})
    put(api, head, {"/bulk/00007": b"changed"})
    started = time.monotonic()
    for _ in range(20):
        changes = diff(api, head)
    per_call = (time.monotonic() - started) / 20
    assert changes == [("/", "dir", "dir"), ("/bulk/", "dir", "dir"),
                       ("/bulk/00007", h(b"x"), h(b"changed"))]
    # Walking 20,000 files would take far longer than this (~100 ms+).
    assert per_call < 0.02, per_call


def test_every_way_pachd_names_a_commit(api) -> None:
    name = new_repo(api)
    repo = refs.repo(name)
    branch = refs.branch(name, "master")
    put(api, refs.branch_head(name, "master"), {"/f": b"one"})
    first = head_id(api, name)
    forms = {
        "repo+id": pfs.Commit(repo=repo, id=first),
        "branch+id": pfs.Commit(branch=pfs.Branch(repo=repo), id=first),
        "branch alone": pfs.Commit(branch=branch),
        "repo+branch": pfs.Commit(repo=repo, branch=pfs.Branch(name="master")),
        "repo+branch name as id": pfs.Commit(repo=repo, id="master"),
    }
    for label, commit in forms.items():
        assert get(api, commit, "/f") == b"one", label
        info = api.InspectFile(pfs.InspectFileRequest(file=refs.file(commit, "/f")))
        assert info.hash == pfs_hash(b"one"), label
        assert [i.file.path for i in api.ListFile(pfs.ListFileRequest(file=refs.file(commit, "/")))] == ["/f"]
        assert [i.file.path for i in api.GlobFile(pfs.GlobFileRequest(commit=commit, pattern="/*"))] == ["/f"]
        assert [i.file.path for i in api.WalkFile(pfs.WalkFileRequest(file=refs.file(commit, "/")))] == ["/", "/f"]
        assert api.InspectCommit(pfs.InspectCommitRequest(commit=commit)).commit.id == first, label
    # Writes, by branch only (python-pachyderm's form): one new commit each.
    by_branch = pfs.Commit(branch=branch)
    api.ModifyFile(iter([pfs_client.set_commit(by_branch), *pfs_client.put_file("/g", [b"two"])]))
    second = head_id(api, name)
    assert second != first
    api.ModifyFile(iter([
        pfs_client.set_commit(by_branch),
        pfs_client.copy_file("/copy", pfs.File(commit=pfs.Commit(branch=pfs.Branch(repo=repo), id=first), path="/f")),
    ]))
    assert get(api, by_branch, "/copy") == b"one"
    # ListCommit from/to without Commit.repo: from is excluded, to included.
    request = pfs.ListCommitRequest(repo=repo, to=pfs.Commit(branch=branch))
    getattr(request, "from").CopyFrom(pfs.Commit(branch=pfs.Branch(repo=repo), id=first))
    listed = [c.commit.id for c in api.ListCommit(request)]
    assert listed == [head_id(api, name), second]
    # CreateBranch head and StartCommit parent by branch only.
    api.CreateBranch(pfs.CreateBranchRequest(
        branch=refs.branch(name, "old"), head=pfs.Commit(branch=pfs.Branch(repo=repo), id=first)))
    assert head_id(api, name, "old") == first
    started = api.StartCommit(pfs.StartCommitRequest(
        branch=refs.branch(name, "work"), parent=pfs.Commit(branch=pfs.Branch(repo=repo, name="old"))))
    open_commit = pfs.Commit(branch=pfs.Branch(repo=repo), id=started.id)
    api.ModifyFile(iter([pfs_client.set_commit(open_commit), *pfs_client.put_file("/w", [b"w"])]))
    api.FinishCommit(pfs.FinishCommitRequest(commit=open_commit))
    info = api.InspectCommit(pfs.InspectCommitRequest(commit=pfs.Commit(branch=refs.branch(name, "work"))))
    assert (info.commit.id, info.parent_commit.id) == (started.id, first)
    assert info.finished.seconds > 0
    # Nothing names a repo: pachd's error.
    with pytest.raises(grpc.RpcError) as e:
        api.InspectCommit(pfs.InspectCommitRequest(commit=pfs.Commit(id=first)))
    assert (e.value.code(), e.value.details()) == (grpc.StatusCode.UNKNOWN, "cannot pick commit with no repo")


def test_list_commit_filters_by_origin_kind_as_pachd(api) -> None:
    name = new_repo(api)  # CreateBranch made an AUTO commit
    put(api, refs.branch_head(name, "master"), {"/f": b"1"})
    all_kinds = list(api.ListCommit(pfs.ListCommitRequest(repo=refs.repo(name))))
    assert [c.origin.kind for c in all_kinds] == [pfs.USER, pfs.AUTO]
    user = list(api.ListCommit(pfs.ListCommitRequest(repo=refs.repo(name), origin_kind=pfs.USER)))
    assert [c.commit.id for c in user] == [all_kinds[0].commit.id]
    everything = list(api.ListCommit(pfs.ListCommitRequest(repo=refs.repo(name), origin_kind=pfs.USER, all=True)))
    assert len(everything) == 2


def test_get_version_answers_the_pachyderm_release_followed(pfsd: Pfsd) -> None:
    assert pfsd._channel is not None
    version = versionpb_v2_pb2_grpc.APIStub(pfsd._channel).GetVersion(empty_pb2.Empty())
    assert (version.major, version.minor) == (2, 12)
    assert version.platform.startswith("linux/")


def test_squash_keeps_every_childs_tree_and_drop_removes_a_leaf(api) -> None:
    name = new_repo(api)
    master = refs.branch_head(name, "master")
    put(api, master, {"/a": b"1", "/keep": b"k"})
    c1 = head_id(api, name)
    put(api, master, {"/a": b"2", "/b": b"b"})
    c2 = head_id(api, name)
    put(api, master, {"/a": b"3"})
    c3 = head_id(api, name)
    # A fork from c2 as well: c2 has a child in its lineage and one in a new lineage.
    api.CreateBranch(pfs.CreateBranchRequest(branch=refs.branch(name, "dev"), head=refs.commit(name, c2)))
    put(api, refs.branch_head(name, "dev"), {"/dev": b"d"})
    dev = head_id(api, name, "dev")

    def tree(commit_id: str) -> dict[str, bytes]:
        c = refs.commit(name, commit_id)
        files = api.WalkFile(pfs.WalkFileRequest(file=refs.file(c, "/")))
        return {f.file.path: get(api, c, f.file.path) for f in files if f.file_type == pfs.FILE}

    before = {c: tree(c) for c in (c1, c3, dev)}
    api.SquashCommit(pfs.SquashCommitRequest(commit=pfs.Commit(branch=pfs.Branch(repo=refs.repo(name)), id=c2)))
    assert {c: tree(c) for c in (c1, c3, dev)} == before
    for child in (c3, dev):
        assert api.InspectCommit(pfs.InspectCommitRequest(commit=refs.commit(name, child))).parent_commit.id == c1
    with pytest.raises(grpc.RpcError) as e:
        api.InspectCommit(pfs.InspectCommitRequest(commit=refs.commit(name, c2)))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    # New commits on both branches still build on the right trees.
    put(api, master, {"/after": b"x"})
    put(api, refs.branch_head(name, "dev"), {"/after": b"y"})
    assert tree(head_id(api, name)) == {**before[c3], "/after": b"x"}
    assert tree(head_id(api, name, "dev")) == {**before[dev], "/after": b"y"}
    assert diff(api, refs.commit(name, c3)) == [
        ("/", "dir", "dir"), ("/a", h(b"1"), h(b"3")), ("/b", "-", h(b"b")),
    ]

    # Drop: a commit with children is refused; a leaf goes, its branch back to the parent.
    with pytest.raises(grpc.RpcError) as e:
        api.DropCommit(pfs.DropCommitRequest(commit=refs.commit(name, c1)))
    assert e.value.code() == grpc.StatusCode.UNKNOWN and "has children" in e.value.details()
    leaf = head_id(api, name, "dev")
    api.DropCommit(pfs.DropCommitRequest(commit=pfs.Commit(branch=refs.branch(name, "dev"))))
    assert head_id(api, name, "dev") == dev
    assert tree(dev) == before[dev]
    put(api, refs.branch_head(name, "dev"), {"/again": b"z"})
    assert tree(head_id(api, name, "dev")) == {**before[dev], "/again": b"z"}
    with pytest.raises(grpc.RpcError) as e:
        api.SquashCommit(pfs.SquashCommitRequest(commit=refs.commit(name, head_id(api, name))))
    assert e.value.code() == grpc.StatusCode.UNKNOWN and "no children" in e.value.details()
    assert leaf != dev
