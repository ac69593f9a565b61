"""Projects, repos, branches and commits behave as pachd's do."""

from __future__ import annotations

import grpc
import pytest

from pachs3gw.pfs import refs
from pachs3gw.proto import pfs_v2_pb2 as pfs
from tests.pfsd.conftest import get, new_repo, put


def test_default_project_exists_and_projects_can_be_created(api) -> None:
    names = [p.project.name for p in api.ListProject(pfs.ListProjectRequest())]
    assert "default" in names
    api.CreateProject(pfs.CreateProjectRequest(project=pfs.Project(name="proj1")))
    info = api.InspectProject(pfs.InspectProjectRequest(project=pfs.Project(name="proj1")))
    assert info.project.name == "proj1"
    with pytest.raises(grpc.RpcError) as e:
        api.CreateProject(pfs.CreateProjectRequest(project=pfs.Project(name="proj1")))
    assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS
    api.DeleteProject(pfs.DeleteProjectRequest(project=pfs.Project(name="proj1")))
    with pytest.raises(grpc.RpcError) as e:
        api.InspectProject(pfs.InspectProjectRequest(project=pfs.Project(name="proj1")))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert e.value.details() == 'project "proj1" not found'


def test_repo_in_another_project_is_separate(api) -> None:
    api.CreateProject(pfs.CreateProjectRequest(project=pfs.Project(name="other")))
    api.CreateRepo(pfs.CreateRepoRequest(repo=refs.repo("same", "other")))
    api.CreateRepo(pfs.CreateRepoRequest(repo=refs.repo("same")))
    put(api, refs.branch_head("same", "master", "other"), {"/x": b"other"})
    put(api, refs.branch_head("same", "master"), {"/x": b"default"})
    assert get(api, refs.branch_head("same", "master", "other"), "/x") == b"other"
    assert get(api, refs.branch_head("same", "master"), "/x") == b"default"


def test_create_repo_twice_is_already_exists_unless_update(api) -> None:
    name = new_repo(api)
    with pytest.raises(grpc.RpcError) as e:
        api.CreateRepo(pfs.CreateRepoRequest(repo=refs.repo(name)))
    assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert e.value.details() == f"repo default/{name} already exists"
    api.CreateRepo(pfs.CreateRepoRequest(repo=refs.repo(name), update=True, description="d"))
    info = api.InspectRepo(pfs.InspectRepoRequest(repo=refs.repo(name)))
    assert info.description == "d"
    assert [b.name for b in info.branches] == ["master"]
    assert info.repo.type == "user"


def test_empty_project_name_means_default(api) -> None:
    api.CreateRepo(pfs.CreateRepoRequest(repo=pfs.Repo(name="noproject")))
    info = api.InspectRepo(pfs.InspectRepoRequest(repo=refs.repo("noproject")))
    assert info.repo.project.name == "default"


def test_list_repo_and_delete_repo(api) -> None:
    name = new_repo(api)
    listed = [r.repo.name for r in api.ListRepo(pfs.ListRepoRequest(type="user"))]
    assert name in listed
    api.DeleteRepo(pfs.DeleteRepoRequest(repo=refs.repo(name)))
    listed = [r.repo.name for r in api.ListRepo(pfs.ListRepoRequest(type="user"))]
    assert name not in listed


def test_branches_heads_and_delete_branch_of_missing_branch(api) -> None:
    name = new_repo(api)
    put(api, refs.branch_head(name, "master"), {"/a": b"1"})
    head = api.InspectBranch(pfs.InspectBranchRequest(branch=refs.branch(name, "master"))).head
    api.CreateBranch(
        pfs.CreateBranchRequest(branch=refs.branch(name, "dev"), head=refs.commit(name, head.id))
    )
    assert get(api, refs.branch_head(name, "dev"), "/a") == b"1"
    put(api, refs.branch_head(name, "dev"), {"/a": b"dev"})
    put(api, refs.branch_head(name, "master"), {"/a": b"master"})
    assert get(api, refs.branch_head(name, "dev"), "/a") == b"dev"
    assert get(api, refs.branch_head(name, "master"), "/a") == b"master"
    names = {b.branch.name for b in api.ListBranch(pfs.ListBranchRequest(repo=refs.repo(name)))}
    assert names == {"master", "dev"}
    api.DeleteBranch(pfs.DeleteBranchRequest(branch=refs.branch(name, "dev")))
    api.DeleteBranch(pfs.DeleteBranchRequest(branch=refs.branch(name, "dev")))
    assert get(api, refs.branch_head(name, "master"), "/a") == b"master"
    assert get(api, refs.commit(name, head.id), "/a") == b"1"


def test_commits_chain_newest_first_with_ancestry(api) -> None:
    name = new_repo(api)
    for i in range(5):
        put(api, refs.branch_head(name, "master"), {"/n": str(i).encode()})
    commits = list(api.ListCommit(pfs.ListCommitRequest(repo=refs.repo(name))))
    assert len(commits) == 6  # the empty head CreateBranch made, then 5
    assert all(len(c.commit.id) == 32 for c in commits)
    for newer, older in zip(commits, commits[1:]):
        assert newer.parent_commit.id == older.commit.id
    assert all(c.finished.seconds > 0 for c in commits)
    limited = list(api.ListCommit(pfs.ListCommitRequest(repo=refs.repo(name), number=2)))
    assert [c.commit.id for c in limited] == [c.commit.id for c in commits[:2]]
    assert get(api, refs.commit(name, "master"), "/n") == b"4"
    assert get(api, refs.commit(name, "master^"), "/n") == b"3"
    assert get(api, refs.commit(name, "master~3"), "/n") == b"1"
    info = api.InspectCommit(pfs.InspectCommitRequest(commit=refs.commit(name, commits[2].commit.id)))
    assert info.commit.id == commits[2].commit.id
    assert [c.id for c in info.child_commits] == [commits[1].commit.id]
    assert get(api, refs.commit(name, commits[2].commit.id), "/n") == b"2"


def test_start_write_finish_commit(api) -> None:
    name = new_repo(api)
    commit = api.StartCommit(pfs.StartCommitRequest(branch=refs.branch(name, "master")))
    put(api, refs.branch_head(name, "master"), {"/a": b"1"})
    put(api, refs.commit(name, commit.id), {"/b": b"2"})
    # Reading an open commit works.
    assert get(api, refs.commit(name, commit.id), "/a") == b"1"
    info = api.InspectCommit(pfs.InspectCommitRequest(commit=refs.commit(name, commit.id)))
    assert not info.HasField("finished")
    api.FinishCommit(pfs.FinishCommitRequest(commit=refs.commit(name, commit.id)))
    info = api.InspectCommit(
        pfs.InspectCommitRequest(commit=refs.commit(name, commit.id), wait=pfs.FINISHED)
    )
    assert info.HasField("finished")
    assert info.details.size_bytes == 2
    with pytest.raises(grpc.RpcError) as e:
        put(api, refs.commit(name, commit.id), {"/c": b"3"})
    assert e.value.code() == grpc.StatusCode.UNKNOWN
    assert e.value.details() == f"commit default/{name}@{commit.id} has already finished"


def test_start_commit_on_an_open_head_is_refused_as_pachd_does(api) -> None:
    name = new_repo(api)
    put(api, refs.branch_head(name, "master"), {"/a": b"1"})
    first = api.StartCommit(pfs.StartCommitRequest(branch=refs.branch(name, "master")))
    for request in (
        pfs.StartCommitRequest(branch=refs.branch(name, "master")),
        pfs.StartCommitRequest(branch=refs.branch(name, "other"), parent=refs.commit(name, first.id)),
    ):
        with pytest.raises(grpc.RpcError) as e:
            api.StartCommit(request)
        assert e.value.code() == grpc.StatusCode.UNKNOWN
        assert e.value.details() == f"parent commit default/{name}@{first.id} has not been finished"
    # Nothing was made by the refused calls: the open commit is still the head.
    info = api.InspectCommit(pfs.InspectCommitRequest(commit=refs.branch_head(name, "master")))
    assert info.commit.id == first.id and not info.HasField("finished")
    assert "other" not in [
        b.branch.name for b in api.ListBranch(pfs.ListBranchRequest(repo=refs.repo(name)))
    ]
    # Once it is finished (or cleared and finished), the next one starts on top of it.
    api.ClearCommit(pfs.ClearCommitRequest(commit=refs.commit(name, first.id)))
    api.FinishCommit(pfs.FinishCommitRequest(commit=refs.commit(name, first.id)))
    second = api.StartCommit(pfs.StartCommitRequest(branch=refs.branch(name, "master")))
    info = api.InspectCommit(pfs.InspectCommitRequest(commit=refs.commit(name, second.id)))
    assert info.parent_commit.id == first.id
    api.FinishCommit(pfs.FinishCommitRequest(commit=refs.commit(name, second.id)))


def test_output_branch_refuses_writes(api) -> None:
    source = new_repo(api)
    out = new_repo(api)
    api.CreateBranch(
        pfs.CreateBranchRequest(
            branch=refs.branch(out, "master"), provenance=[refs.branch(source, "master")]
        )
    )
    with pytest.raises(grpc.RpcError) as e:
        put(api, refs.branch_head(out, "master"), {"/a": b"x"})
    assert e.value.code() == grpc.StatusCode.UNKNOWN
    assert e.value.details() == f"cannot start a commit on an output branch: default/{out}@master"
    with pytest.raises(grpc.RpcError) as e:
        api.StartCommit(pfs.StartCommitRequest(branch=refs.branch(out, "master")))
    assert "cannot start a commit on an output branch" in e.value.details()
    info = api.InspectBranch(pfs.InspectBranchRequest(branch=refs.branch(out, "master")))
    assert [b.repo.name for b in info.provenance] == [source]


def test_clear_commit_empties_an_open_commit_and_it_can_still_finish(api) -> None:
    name = new_repo(api)
    head = refs.branch_head(name, "master")
    put(api, head, {"/kept": b"before"})
    open_commit = api.StartCommit(
        pfs.StartCommitRequest(branch=pfs.Branch(repo=refs.repo(name), name="master"))
    )
    put(api, open_commit, {"/dropped": b"x" * 1000, "/kept": b"changed"})
    api.ClearCommit(pfs.ClearCommitRequest(commit=open_commit))
    api.FinishCommit(pfs.FinishCommitRequest(commit=open_commit))
    with pytest.raises(grpc.RpcError) as missing:
        api.InspectFile(pfs.InspectFileRequest(file=refs.file(open_commit, "/dropped")))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    kept = api.GetFile(pfs.GetFileRequest(file=refs.file(open_commit, "/kept")))
    assert b"".join(m.value for m in kept) == b"before"
