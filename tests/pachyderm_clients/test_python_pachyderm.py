"""python-pachyderm 7.6.0 (PyPI) against the embedded PFS server, as its users call it.

That client names commits by branch only (``Commit{branch: {repo, name}}``,
no ``Commit.repo``) and defaults ListCommit to USER commits: both are
pachd behaviours pfsd must share.
"""

from __future__ import annotations

import hashlib

import pytest

from tests.pachyderm_clients.conftest import Driver, new_name


@pytest.fixture
def repo(pp: Driver) -> str:
    name = new_name("pp")
    pp.run(f"client.create_repo({name!r}, description='from python-pachyderm')")
    pp.run(f"client.create_branch({name!r}, 'master')")
    return name


def head(pp: Driver, repo: str, branch: str = "master") -> str:
    return pp.eval(f"client.inspect_branch({repo!r}, {branch!r})")["head"]["id"]


def test_version_health_projects_and_repos(pp: Driver) -> None:
    version = pp.eval("client.get_remote_version()")
    assert (version["major"], version["minor"]) == (2, 12)
    assert pp.eval("client.health_check().status") == 1  # SERVING
    project = new_name("proj")
    pp.run(f"client.create_project({project!r}, description='p')")
    assert pp.eval(f"client.inspect_project({project!r})")["description"] == "p"
    assert project in [p["project"]["name"] for p in pp.eval("client.list_project()")]
    name = new_name("pp")
    pp.run(f"client.create_repo({name!r}, description='d', project_name={project!r})")
    info = pp.eval(f"client.inspect_repo({name!r}, project_name={project!r})")
    assert (info["repo"]["name"], info["repo"]["project"]["name"], info["description"]) == (name, project, "d")
    listed = pp.eval(f"client.list_repo(projects_filter=[pfs_pb2.Project(name={project!r})])")
    assert [r["repo"]["name"] for r in listed] == [name]
    pp.run(f"client.delete_repo({name!r}, project_name={project!r})")
    pp.run(f"client.delete_project({project!r})")
    e = pp.error(f"client.inspect_project({project!r})")
    assert (e.code, e.details) == ("NOT_FOUND", f'project "{project}" not found')


def test_put_get_list_walk_glob_copy_delete_through_modify_file_client(pp: Driver, repo: str) -> None:
    pp.run(
        f"with client.modify_file_client(({repo!r}, 'master')) as mfc:\n"
        "    mfc.put_file_from_bytes('/a.txt', b'hello')\n"
        "    mfc.put_file_from_bytes('/dir/b.csv', b'1,2\\n')\n"
        "    mfc.put_file_from_bytes('/dir/sub/c.bin', bytes(range(256)) * 4096)\n"
    )
    first = head(pp, repo)
    at = f"({repo!r}, 'master')"
    assert pp.eval(f"client.get_file({at}, '/a.txt').read()") == b"hello"
    assert pp.eval(f"client.get_file({at}, '/dir/sub/c.bin', offset=1000).read()") == (
        bytes(range(256)) * 4096
    )[1000:]
    info = pp.eval(f"client.inspect_file({at}, '/dir/b.csv')")
    assert (info["file"]["path"], info["file_type"], int(info["size_bytes"])) == ("/dir/b.csv", "FILE", 4)
    assert [f["file"]["path"] for f in pp.eval(f"client.list_file({at}, '/')")] == ["/a.txt", "/dir/"]
    assert [f["file"]["path"] for f in pp.eval(f"client.walk_file({at}, '/dir')")] == [
        "/dir/", "/dir/b.csv", "/dir/sub/", "/dir/sub/c.bin"
    ]
    assert [f["file"]["path"] for f in pp.eval(f"client.glob_file({at}, '/dir/*')")] == [
        "/dir/b.csv", "/dir/sub/"
    ]
    assert pp.eval(f"client.path_exists({at}, '/dir')") is True
    assert pp.eval(f"client.path_exists({at}, '/nope')") is False

    # put_file_bytes overwrites (or appends); copy_file and delete_file each make one commit.
    pp.run(f"client.put_file_bytes({at}, '/a.txt', b'HELLO')")
    pp.run(f"client.put_file_bytes({at}, '/a.txt', b'!', append=True)")
    pp.run(f"client.copy_file({at}, '/dir/b.csv', {at}, '/copy.csv')")
    pp.run(f"client.delete_file({at}, '/dir/sub/c.bin')")
    assert pp.eval(f"client.get_file({at}, '/a.txt').read()") == b"HELLO!"
    assert pp.eval(f"client.get_file({at}, '/copy.csv').read()") == b"1,2\n"
    assert [f["file"]["path"] for f in pp.eval(f"client.list_file({at}, '/dir')")] == ["/dir/b.csv"]
    commits = pp.eval(f"client.list_commit({repo!r})")  # USER commits only, newest first
    assert len(commits) == 5 and commits[-1]["commit"]["id"] == first
    assert all(c["origin"]["kind"] == "USER" for c in commits)

    # The old commit still reads as it was, by ID.
    old = f"({repo!r}, {first!r})"
    assert pp.eval(f"client.get_file({old}, '/a.txt').read()") == b"hello"
    assert pp.eval(f"client.path_exists({old}, '/dir/sub/c.bin')") is True
    assert pp.eval(f"client.get_file(({repo!r}, 'master~4'), '/a.txt').read()") == b"hello"


def test_commits_branches_and_diff(pp: Driver, repo: str) -> None:
    pp.run(f"client.put_file_bytes(({repo!r}, 'master'), '/f', b'v1')")
    v1 = head(pp, repo)
    pp.run(
        f"with client.commit({repo!r}, 'master', description='two files') as c:\n"
        "    client.put_file_bytes(c, '/f', b'v2')\n"
        "    client.put_file_bytes(c, '/g/h', b'new')\n"
    )
    v2 = head(pp, repo)
    info = pp.eval(f"list(client.inspect_commit(({repo!r}, 'master')))[0]")
    assert (info["commit"]["id"], info["parent_commit"]["id"], info["description"]) == (v2, v1, "two files")
    assert "finished" in info
    diff = pp.eval(f"client.diff_file(({repo!r}, 'master'), '/')")
    assert [(maybe_path(d, "old_file"), maybe_path(d, "new_file")) for d in diff] == [
        ("/", "/"), ("/f", "/f"), (None, "/g/"), (None, "/g/h")
    ]
    assert diff[1]["new_file"]["hash"] != diff[1]["old_file"]["hash"]
    back = pp.eval(f"client.diff_file(({repo!r}, {v1!r}), '/f', ({repo!r}, {v2!r}), '/f')")
    assert [(maybe_path(d, "old_file"), maybe_path(d, "new_file")) for d in back] == [("/f", "/f")]

    # ListCommit with to/from given as python-pachyderm builds them (no Commit.repo).
    ranged = pp.eval(f"client.list_commit({repo!r}, to_commit=({repo!r}, 'master'), from_commit=({repo!r}, {v1!r}))")
    assert [c["commit"]["id"] for c in ranged] == [v2]
    # A branch at an old commit, by branch-only head; a commit on it with a parent.
    pp.run(f"client.create_branch({repo!r}, 'v1', head_commit=({repo!r}, {v1!r}))")
    assert head(pp, repo, "v1") == v1
    commit = pp.eval(f"client.start_commit({repo!r}, 'v1')")
    pp.run(f"client.put_file_bytes(({repo!r}, {commit['id']!r}), '/f', b'fork')")
    pp.run(f"client.finish_commit(({repo!r}, {commit['id']!r}))")
    assert pp.eval(f"client.get_file(({repo!r}, 'v1'), '/f').read()") == b"fork"
    assert pp.eval(f"client.get_file(({repo!r}, 'master'), '/f').read()") == b"v2"
    assert sorted(b["branch"]["name"] for b in pp.eval(f"client.list_branch({repo!r})")) == ["master", "v1"]
    pp.run(f"client.delete_branch({repo!r}, 'v1')")
    assert [b["branch"]["name"] for b in pp.eval(f"client.list_branch({repo!r})")] == ["master"]


def test_errors_have_pachds_codes(pp: Driver, repo: str) -> None:
    e = pp.error("client.inspect_repo('no_such_repo')")
    assert (e.code, e.details) == ("NOT_FOUND", "repo default/no_such_repo not found")
    e = pp.error(f"client.create_repo({repo!r})")
    assert (e.code, e.details) == ("ALREADY_EXISTS", f"repo default/{repo} already exists")
    e = pp.error(f"client.inspect_file(({repo!r}, 'master'), '/missing')")
    assert e.code == "NOT_FOUND" and e.details.startswith(f"file /missing not found in repo default/{repo}")
    e = pp.error(f"client.inspect_branch({repo!r}, 'nope')")
    assert (e.code, e.details) == ("NOT_FOUND", f'branch "nope" not found in repo default/{repo}')
    pp.run(f"client.put_file_bytes(({repo!r}, 'master'), '/d/x', b'x')")
    e = pp.error(f"client.get_file(({repo!r}, 'master'), '/d').read()")
    assert e.code == "UNKNOWN" and "GetFileTAR" in e.details
    finished = head(pp, repo)
    e = pp.error(f"client.finish_commit(({repo!r}, {finished!r}))")
    assert (e.code, e.details) == ("UNKNOWN", f"commit default/{repo}@{finished} has already finished")
    e = pp.error(f"client.put_file_bytes(({repo!r}, {finished!r}), '/y', b'y')")
    assert (e.code, e.details) == ("UNKNOWN", f"commit default/{repo}@{finished} has already finished")
    e = pp.error(f"client.inspect_commit(({repo!r}, {'0' * 32!r}))")
    assert e.code == "NOT_FOUND"


def test_output_branch_refuses_writes(pp: Driver, repo: str) -> None:
    out = new_name("out")
    pp.run(f"client.create_repo({out!r})")
    pp.run(
        f"client.create_branch({out!r}, 'master', provenance=["
        f"pfs_pb2.Branch(repo=pfs_pb2.Repo(name={repo!r}, type='user'), name='master')])"
    )
    e = pp.error(f"client.put_file_bytes(({out!r}, 'master'), '/x', b'x')")
    assert (e.code, e.details) == (
        "UNKNOWN", f"cannot start a commit on an output branch: default/{out}@master"
    )
    e = pp.error(f"client.start_commit({out!r}, 'master')")
    assert e.code == "UNKNOWN" and "output branch" in e.details
    info = pp.eval(f"client.inspect_branch({out!r}, 'master')")
    assert info["provenance"][0]["repo"]["name"] == repo
    assert pp.eval(f"client.list_file(({out!r}, 'master'), '/')") == []


def test_large_file_round_trips_in_19_mib_chunks(pp: Driver, repo: str) -> None:
    # python-pachyderm sends what it reads in one message of up to 20 MiB.
    pp.run("import hashlib, os\nbig = os.urandom(1 << 20) * 24")
    pp.run(f"client.put_file_bytes(({repo!r}, 'master'), '/big', big)")
    digest = pp.eval(f"hashlib.sha256(client.get_file(({repo!r}, 'master'), '/big').read()).hexdigest()")
    assert digest == pp.eval("hashlib.sha256(big).hexdigest()")
    assert int(pp.eval(f"client.inspect_file(({repo!r}, 'master'), '/big')")["size_bytes"]) == 24 << 20
    assert hashlib.sha256(b"").hexdigest() != digest


def maybe_path(diff: dict, side: str) -> str | None:  # type: ignore[type-arg]
    return diff[side]["file"]["path"] if side in diff else None


def test_commit_sets_squash_and_drop(pp: Driver, repo: str) -> None:
    at = f"({repo!r}, 'master')"
    for data in (b"1", b"2", b"3"):
        pp.run(f"client.put_file_bytes({at}, '/f', {data!r})")
    ids = [c["commit"]["id"] for c in pp.eval(f"client.list_commit({repo!r})")]
    newest, middle, oldest = ids
    # A bare ID is a commit set (pachd's global commits): here one commit each.
    infos = pp.eval(f"list(client.inspect_commit({middle!r}))")
    assert [i["commit"]["id"] for i in infos] == [middle]
    assert [i["commit"]["id"] for i in pp.eval(f"client.wait_commit({newest!r})")] == [newest]
    sets = pp.eval("client.list_commit()")
    assert newest in [s["commit_set"]["id"] for s in sets]
    pp.run(f"client.squash_commit({middle!r})")
    assert [c["commit"]["id"] for c in pp.eval(f"client.list_commit({repo!r})")] == [newest, oldest]
    assert pp.eval(f"client.get_file(({repo!r}, {newest!r}), '/f').read()") == b"3"
    e = pp.error(f"list(client.inspect_commit({middle!r}))")
    assert (e.code, e.details) == ("NOT_FOUND", f"no commits found for commitset {middle}")
    pp.run(f"client.drop_commit({newest!r})")
    assert head(pp, repo) == oldest
    assert pp.eval(f"client.get_file({at}, '/f').read()") == b"1"
