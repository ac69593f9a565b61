"""Deleting repos and branches frees the chunks nothing refers to any more."""

from __future__ import annotations

import os
from pathlib import Path

from pachs3gw.pfs import refs
from pachs3gw.proto import pfs_v2_pb2 as pfs
from tests.pfsd.conftest import MIB, get, new_repo, put, wait_until


def chunk_bytes(data_dir: Path) -> int:
    total = 0
    for d in (data_dir / "chunks").iterdir():
        if d.name != "tmp":
            total += sum(f.stat().st_size for f in d.iterdir())
    return total


def test_delete_repo_and_branch_free_their_chunks(pfsd) -> None:
    api = pfsd.api
    keep = new_repo(api)
    put(api, refs.branch_head(keep, "master"), {"/keep": os.urandom(MIB)})
    before = chunk_bytes(pfsd.data_dir)

    name = new_repo(api)
    put(api, refs.branch_head(name, "master"), {"/a": os.urandom(3 * MIB)})
    put(api, refs.branch_head(name, "master"), {"/a": os.urandom(3 * MIB)})
    api.CreateBranch(pfs.CreateBranchRequest(branch=refs.branch(name, "side")))
    put(api, refs.branch_head(name, "side"), {"/s": os.urandom(2 * MIB)})
    assert chunk_bytes(pfsd.data_dir) >= before + 8 * MIB

    api.DeleteBranch(pfs.DeleteBranchRequest(branch=refs.branch(name, "side")))
    wait_until(lambda: chunk_bytes(pfsd.data_dir) < before + 7 * MIB)
    api.DeleteRepo(pfs.DeleteRepoRequest(repo=refs.repo(name)))
    wait_until(lambda: chunk_bytes(pfsd.data_dir) < before + MIB // 2)
    assert len(get(api, refs.branch_head(keep, "master"), "/keep")) == MIB
