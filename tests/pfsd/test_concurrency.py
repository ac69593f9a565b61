"""Concurrent writers on one branch each get their own commit; none is lost."""

from __future__ import annotations

import threading

from pachs3gw.pfs import refs
from pachs3gw.proto import pfs_v2_pb2 as pfs
from tests.pfsd.conftest import new_repo, put


def test_8_concurrent_writers_x_100_files_make_800_files_and_800_commits(api) -> None:
    name = new_repo(api)
    head = refs.branch_head(name, "master")
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        try:
            for i in range(100):
                put(api, head, {f"/w{w}/f{i:03d}": f"{w}-{i}".encode()})
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    files = [
        f for f in api.WalkFile(pfs.WalkFileRequest(file=refs.file(head, "/")))
        if f.file_type == pfs.FILE
    ]
    assert len(files) == 800
    commits = list(api.ListCommit(pfs.ListCommitRequest(repo=refs.repo(name))))
    assert len(commits) == 801  # + the empty head of the new branch
    # One linear chain: every commit's parent is the next older one.
    for newer, older in zip(commits, commits[1:]):
        assert newer.parent_commit.id == older.commit.id
    chain = list(api.ListCommit(pfs.ListCommitRequest(repo=refs.repo(name), to=head)))
    assert len(chain) == 801
