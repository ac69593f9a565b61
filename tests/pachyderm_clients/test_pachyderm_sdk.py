"""pachyderm-sdk 2.12.2 (PyPI) against the embedded PFS server, as its users call it.

Commits come both from URIs (``Commit.repo`` set) and built by hand from a
branch (``pfs.Commit(branch=...)``, no ``Commit.repo``): pachd takes both.
"""

from __future__ import annotations

import pytest

from tests.pachyderm_clients.conftest import Driver, new_name


@pytest.fixture
def repo(sdk: Driver) -> str:
    name = new_name("sdk")
    sdk.run(f"client.pfs.create_repo(repo=pfs.Repo.from_uri({name!r}), description='from the sdk')")
    sdk.run(f"client.pfs.create_branch(branch=pfs.Branch.from_uri('{name}@master'))")
    return name


def head(sdk: Driver, repo: str, branch: str = "master") -> str:
    return sdk.eval(f"client.pfs.inspect_branch(branch=pfs.Branch.from_uri('{repo}@{branch}'))")["head"]["id"]


def paths(infos: list) -> list[str]:  # type: ignore[type-arg]
    return [i["file"]["path"] for i in infos]


def test_version_projects_and_repos(sdk: Driver) -> None:
    version = sdk.eval("client.get_version()")
    assert (version["major"], version["minor"]) == (2, 12)
    project = new_name("proj")
    sdk.run(f"client.pfs.create_project(project=pfs.Project(name={project!r}), description='p')")
    assert sdk.eval(f"client.pfs.project_exists(pfs.Project(name={project!r}))") is True
    assert project in [p["project"]["name"] for p in sdk.eval("client.pfs.list_project()")]
    uri = f"{project}/images"
    sdk.run(f"client.pfs.create_repo(repo=pfs.Repo.from_uri({uri!r}))")
    assert sdk.eval(f"client.pfs.repo_exists(pfs.Repo.from_uri({uri!r}))") is True
    listed = sdk.eval(f"client.pfs.list_repo(type='user', projects=[pfs.Project(name={project!r})])")
    assert [r["repo"]["name"] for r in listed] == ["images"]
    assert sdk.eval(f"client.pfs.delete_repo(repo=pfs.Repo.from_uri({uri!r}))")["deleted"] is True
    assert sdk.eval(f"client.pfs.repo_exists(pfs.Repo.from_uri({uri!r}))") is False
    sdk.run(f"client.pfs.delete_project(project=pfs.Project(name={project!r}))")
    assert sdk.eval(f"client.pfs.project_exists(pfs.Project(name={project!r}))") is False


def test_everyday_files_in_commits(sdk: Driver, repo: str) -> None:
    sdk.run(
        f"with client.pfs.commit(branch=pfs.Branch.from_uri('{repo}@master'), description='first') as c:\n"
        "    c.put_file_from_bytes(path='/a.txt', data=b'hello')\n"
        "    c.put_file_from_bytes(path='/dir/b.csv', data=b'1,2\\n')\n"
        "    c.put_file_from_bytes(path='/dir/sub/c.bin', data=bytes(range(256)) * 4096)\n"
    )
    first = head(sdk, repo)
    at = f"pfs.Commit.from_uri('{repo}@master')"
    assert sdk.eval(f"client.pfs.pfs_file(file=pfs.File.from_uri('{repo}@master:/a.txt')).read()") == b"hello"
    assert sdk.eval(
        f"b''.join(m.value for m in client.pfs.get_file(file=pfs.File(commit={at}, path='/dir/sub/c.bin'), offset=7))"
    ) == (bytes(range(256)) * 4096)[7:]
    info = sdk.eval(f"client.pfs.inspect_file(file=pfs.File(commit={at}, path='/dir/b.csv'))")
    assert (info["file_type"], int(info["size_bytes"])) == ("FILE", 4)
    assert paths(sdk.eval(f"client.pfs.list_file(file=pfs.File(commit={at}, path='/'))")) == ["/a.txt", "/dir/"]
    assert paths(sdk.eval(f"client.pfs.walk_file(file=pfs.File(commit={at}, path='/dir'))")) == [
        "/dir/", "/dir/b.csv", "/dir/sub/", "/dir/sub/c.bin"
    ]
    assert paths(sdk.eval(f"client.pfs.glob_file(commit={at}, pattern='/**.csv')")) == ["/dir/b.csv"]
    assert sdk.eval(f"client.pfs.path_exists(pfs.File(commit={at}, path='/dir/sub'))") is True

    # Outside a commit: each call is one commit. Commits built from a branch
    # by hand carry no Commit.repo.
    by_branch = f"pfs.Commit(branch=pfs.Branch.from_uri('{repo}@master'))"
    sdk.run(f"client.pfs.put_file_from_bytes(commit={by_branch}, path='/a.txt', data=b'HELLO')")
    sdk.run(f"client.pfs.put_file_from_bytes(commit={by_branch}, path='/a.txt', data=b'!', append=True)")
    sdk.run(f"client.pfs.copy_file(commit={by_branch}, src=pfs.File.from_uri('{repo}@{first}:/dir/b.csv'), dst='/copy.csv')")
    sdk.run(f"client.pfs.delete_file(commit={by_branch}, path='/dir/sub/c.bin')")
    assert sdk.eval(f"client.pfs.pfs_file(file=pfs.File(commit={by_branch}, path='/a.txt')).read()") == b"HELLO!"
    assert sdk.eval(f"client.pfs.pfs_file(file=pfs.File(commit={by_branch}, path='/copy.csv')).read()") == b"1,2\n"
    assert paths(sdk.eval(f"client.pfs.list_file(file=pfs.File(commit={by_branch}, path='/dir'))")) == ["/dir/b.csv"]
    assert paths(sdk.eval(f"client.pfs.glob_file(commit={by_branch}, pattern='/*')")) == ["/a.txt", "/copy.csv", "/dir/"]
    info = sdk.eval(f"client.pfs.inspect_commit(commit={by_branch})")
    assert info["origin"]["kind"] == "USER"

    # Old commits read as they were: by ID, and by ancestry.
    old = f"pfs.Commit.from_uri('{repo}@{first}')"
    assert sdk.eval(f"client.pfs.pfs_file(file=pfs.File(commit={old}, path='/a.txt')).read()") == b"hello"
    assert sdk.eval(f"client.pfs.pfs_file(file=pfs.File.from_uri('{repo}@master^4:/a.txt')).read()") == b"hello"
    assert sdk.eval(f"client.pfs.path_exists(pfs.File(commit={old}, path='/dir/sub/c.bin'))") is True


def test_commits_branches_and_diff(sdk: Driver, repo: str) -> None:
    master = f"pfs.Commit.from_uri('{repo}@master')"
    sdk.run(f"client.pfs.put_file_from_bytes(commit={master}, path='/f', data=b'v1')")
    v1 = head(sdk, repo)
    commit = sdk.eval(f"client.pfs.start_commit(branch=pfs.Branch.from_uri('{repo}@master'), description='d')")
    opened = f"pfs.Commit(branch=pfs.Branch(repo=pfs.Repo.from_uri({repo!r})), id={commit['id']!r})"
    sdk.run(f"client.pfs.put_file_from_bytes(commit={opened}, path='/f', data=b'v2')")
    sdk.run(f"client.pfs.put_file_from_bytes(commit={opened}, path='/g/h', data=b'new')")
    assert "finished" not in sdk.eval(f"client.pfs.inspect_commit(commit={opened})")
    sdk.run(f"client.pfs.finish_commit(commit={opened})")
    info = sdk.eval(f"client.pfs.wait_commit({opened})")
    assert (info["commit"]["id"], info["parent_commit"]["id"], info["description"]) == (commit["id"], v1, "d")

    diff = sdk.eval(f"list(client.pfs.diff_file(new_file=pfs.File(commit={master}, path='/')))")
    assert [(side(d, "old_file"), side(d, "new_file")) for d in diff] == [
        ("/", "/"), ("/f", "/f"), (None, "/g/"), (None, "/g/h")
    ]
    back = sdk.eval(
        f"list(client.pfs.diff_file(new_file=pfs.File.from_uri('{repo}@{v1}:/'), "
        f"old_file=pfs.File(commit=pfs.Commit(branch=pfs.Branch.from_uri('{repo}@master')), path='/')))"
    )
    assert [(side(d, "old_file"), side(d, "new_file")) for d in back] == [
        ("/", "/"), ("/f", "/f"), ("/g/", None), ("/g/h", None)
    ]

    listed = sdk.eval(f"client.pfs.list_commit(repo=pfs.Repo.from_uri({repo!r}), origin_kind=pfs.OriginKind.USER)")
    assert [c["commit"]["id"] for c in listed] == [commit["id"], v1]
    ranged = sdk.eval(
        f"client.pfs.list_commit(repo=pfs.Repo.from_uri({repo!r}), "
        f"to=pfs.Commit(branch=pfs.Branch.from_uri('{repo}@master')), "
        f"from_=pfs.Commit(branch=pfs.Branch(repo=pfs.Repo.from_uri({repo!r})), id={v1!r}))"
    )
    assert [c["commit"]["id"] for c in ranged] == [commit["id"]]

    sdk.run(f"client.pfs.create_branch(branch=pfs.Branch.from_uri('{repo}@v1'), head=pfs.Commit(branch=pfs.Branch(repo=pfs.Repo.from_uri({repo!r})), id={v1!r}))")
    assert head(sdk, repo, "v1") == v1
    assert sdk.eval(f"client.pfs.branch_exists(pfs.Branch.from_uri('{repo}@v1'))") is True
    assert sorted(b["branch"]["name"] for b in sdk.eval(f"client.pfs.list_branch(repo=pfs.Repo.from_uri({repo!r}))")) == ["master", "v1"]
    sdk.run(f"client.pfs.delete_branch(branch=pfs.Branch.from_uri('{repo}@v1'))")
    assert sdk.eval(f"client.pfs.branch_exists(pfs.Branch.from_uri('{repo}@v1'))") is False
    assert sdk.eval(f"client.pfs.commit_exists(pfs.Commit.from_uri('{repo}@{v1}'))") is True


def test_errors_have_pachds_codes(sdk: Driver, repo: str) -> None:
    e = sdk.error("client.pfs.inspect_repo(repo=pfs.Repo.from_uri('no_such_repo'))")
    assert (e.code, e.details) == ("NOT_FOUND", "repo default/no_such_repo not found")
    e = sdk.error(f"client.pfs.create_repo(repo=pfs.Repo.from_uri({repo!r}))")
    assert (e.code, e.details) == ("ALREADY_EXISTS", f"repo default/{repo} already exists")
    e = sdk.error(f"client.pfs.inspect_file(file=pfs.File.from_uri('{repo}@master:/missing'))")
    assert e.code == "NOT_FOUND" and e.details.startswith(f"file /missing not found in repo default/{repo}")
    e = sdk.error(f"client.pfs.inspect_commit(commit=pfs.Commit.from_uri('{repo}@{'a' * 32}'))")
    assert (e.code, e.details) == ("NOT_FOUND", f"commit default/{repo}@{'a' * 32} not found")
    sdk.run(f"client.pfs.put_file_from_bytes(commit=pfs.Commit.from_uri('{repo}@master'), path='/x', data=b'x')")
    finished = head(sdk, repo)
    e = sdk.error(f"client.pfs.finish_commit(commit=pfs.Commit.from_uri('{repo}@{finished}'))")
    assert (e.code, e.details) == ("UNKNOWN", f"commit default/{repo}@{finished} has already finished")
    e = sdk.error(f"client.pfs.create_repo(repo=pfs.Repo.from_uri('bad.name'))")
    assert e.code == "UNKNOWN" and "invalid" in e.details


def test_output_branch_refuses_writes(sdk: Driver, repo: str) -> None:
    out = new_name("out")
    sdk.run(f"client.pfs.create_repo(repo=pfs.Repo.from_uri({out!r}))")
    sdk.run(f"client.pfs.create_branch(branch=pfs.Branch.from_uri('{out}@master'), provenance=[pfs.Branch.from_uri('{repo}@master')])")
    e = sdk.error(f"client.pfs.put_file_from_bytes(commit=pfs.Commit.from_uri('{out}@master'), path='/x', data=b'x')")
    assert (e.code, e.details) == ("UNKNOWN", f"cannot start a commit on an output branch: default/{out}@master")
    e = sdk.error(f"client.pfs.start_commit(branch=pfs.Branch.from_uri('{out}@master'))")
    assert e.code == "UNKNOWN" and "output branch" in e.details
    info = sdk.eval(f"client.pfs.inspect_branch(branch=pfs.Branch.from_uri('{out}@master'))")
    assert info["provenance"][0]["repo"]["name"] == repo


def side(diff: dict, name: str) -> str | None:  # type: ignore[type-arg]
    return diff[name]["file"]["path"] if name in diff else None


def test_commit_sets_squash_and_drop(sdk: Driver, repo: str) -> None:
    master = f"pfs.Commit.from_uri('{repo}@master')"
    for data in (b"1", b"2", b"3"):
        sdk.run(f"client.pfs.put_file_from_bytes(commit={master}, path='/f', data={data!r})")
    ids = [c["commit"]["id"] for c in sdk.eval(
        f"client.pfs.list_commit(repo=pfs.Repo.from_uri({repo!r}), origin_kind=pfs.OriginKind.USER)")]
    newest, middle, oldest = ids
    infos = sdk.eval(f"client.pfs.wait_commit_set(pfs.CommitSet(id={middle!r}))")
    assert [i["commit"]["id"] for i in infos] == [middle]
    assert middle in [s["commit_set"]["id"] for s in sdk.eval("client.pfs.list_commit_set()")]
    by_branch_id = f"pfs.Commit(branch=pfs.Branch(repo=pfs.Repo.from_uri({repo!r})), id={middle!r})"
    sdk.run(f"client.pfs.squash_commit(commit={by_branch_id})")
    assert sdk.eval(f"client.pfs.commit_exists(pfs.Commit.from_uri('{repo}@{middle}'))") is False
    assert sdk.eval(f"client.pfs.inspect_commit(commit=pfs.Commit.from_uri('{repo}@{newest}'))")["parent_commit"]["id"] == oldest
    assert sdk.eval(f"client.pfs.pfs_file(file=pfs.File.from_uri('{repo}@{newest}:/f')).read()") == b"3"
    e = sdk.error(f"client.pfs.drop_commit(commit=pfs.Commit.from_uri('{repo}@{oldest}'))")
    assert e.code == "UNKNOWN" and "has children" in e.details
    sdk.run(f"client.pfs.drop_commit(commit=pfs.Commit(branch=pfs.Branch.from_uri('{repo}@master')))")
    assert head(sdk, repo) == oldest
    assert sdk.eval(f"client.pfs.pfs_file(file=pfs.File.from_uri('{repo}@master:/f')).read()") == b"1"
