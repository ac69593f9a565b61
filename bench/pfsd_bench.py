"""Throughput and scaling of the embedded PFS server, through gRPC.

    python -m bench.pfsd_bench [--quick]

Measures, with the same gRPC client both times, the server run in this
process and as a child process on a unix socket:

* MB/s writing one 1 GiB file (1 MiB AddFile messages) and reading it back;
* the time of a one-small-file commit (ModifyFile on a branch) and of an
  InspectFile / a 100-entry ListFile page with 1,000 vs 100,000 files and
  commits already in the repo (history built in-process, in bulk).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

import grpc

from pachs3gw.pfs import client as pfs_client
from pachs3gw.pfs import refs
from pachs3gw.pfsd import Store, start_server
from pachs3gw.pfsd._records import CommitRef, Edit
from pachs3gw.pfsd._content import make
from pachs3gw.proto import pfs_v2_pb2 as pfs
from pachs3gw.proto import pfs_v2_pb2_grpc

MIB = 1 << 20
ROOT = Path(__file__).resolve().parent.parent


class Server:
    """The server in this process or as a child, on a unix socket."""

    def __init__(self, data_dir: str, child: bool) -> None:
        self.sock = os.path.join(data_dir, "pfsd.sock")
        self.listen = "unix:" + self.sock
        self.child = child
        if child:
            env = dict(os.environ, PYTHONPATH=str(ROOT))
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "pachs3gw.pfsd", "--listen", self.listen,
                 "--data-dir", os.path.join(data_dir, "store")],
                stdout=subprocess.PIPE, text=True, env=env,
            )
            assert self.proc.stdout is not None
            assert self.proc.stdout.readline().startswith("LISTENING")
        else:
            self.running = start_server(os.path.join(data_dir, "store"), self.listen)
        self.channel = pfs_client.open_channel(self.listen)
        self.api = pfs_v2_pb2_grpc.APIStub(self.channel)

    def stop(self) -> None:
        self.channel.close()
        if self.child:
            self.proc.terminate()
            self.proc.wait()
        else:
            self.running.stop()


def _payload(total: int) -> Iterator[bytes]:
    """Distinct 1 MiB messages (identical ones would be deduplicated)."""
    base = os.urandom(MIB)
    for i in range(total // MIB):
        yield i.to_bytes(8, "big") + base[8:]


def bench_throughput(api: pfs_v2_pb2_grpc.APIStub, size: int) -> tuple[float, float]:
    api.CreateRepo(pfs.CreateRepoRequest(repo=refs.repo("tput")))
    head = refs.branch_head("tput", "master")

    def requests() -> Iterator[pfs.ModifyFileRequest]:
        yield pfs_client.set_commit(head)
        for chunk in _payload(size):
            # Attribute assignment: the nested-constructor form copies the
            # payload slowly in upb (~300 MB/s), which would bound the bench.
            request = pfs.ModifyFileRequest()
            request.add_file.path = "/big"
            request.add_file.raw.value = chunk
            yield request

    start = time.perf_counter()
    api.ModifyFile(requests())
    write = size / MIB / (time.perf_counter() - start)
    start = time.perf_counter()
    n = 0
    for m in api.GetFile(pfs.GetFileRequest(file=refs.file(head, "/big"))):
        n += len(m.value)
    read = size / MIB / (time.perf_counter() - start)
    assert n == size
    return write, read


def build_history(store_dir: str, n: int) -> None:
    """``n`` commits of one small file each on default/hist@master, in bulk."""
    store = Store(store_dir)
    store.create_repo("default", "hist", "user", "", False)
    store.create_branch("default", "hist", "master", None, [])
    target = CommitRef("default", "hist", branch="master")
    content = make(0, b"", b"")
    with store.database.write():  # one transaction for the whole history
        for i in range(n):
            store.modify(target, {f"/dir/{i:07d}": Edit(reset=True, parts=[content])}, [])
    store.close()


def _timed(fn: Callable[[], object], repeat: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat * 1000


def bench_scaling(data_dir: str, n: int, child: bool) -> dict[str, float]:
    build_history(os.path.join(data_dir, "store"), n)
    server = Server(data_dir, child)
    api = server.api
    head = refs.branch_head("hist", "master")
    counter = iter(range(10**9))

    def commit_one() -> None:
        i = next(counter)
        api.ModifyFile(iter([pfs_client.set_commit(head), pfs_client.add_bytes(f"/new/{i}", b"x" * 100)]))

    mid = f"/dir/{n // 2:07d}"
    result = {
        "commit_ms": _timed(commit_one, 50),
        "inspect_ms": _timed(lambda: api.InspectFile(pfs.InspectFileRequest(file=refs.file(head, mid))), 200),
        "list_page_ms": _timed(
            lambda: list(api.ListFile(pfs.ListFileRequest(
                file=refs.file(head, "/dir"), number=100, paginationMarker=refs.file(head, mid)))),
            100,
        ),
    }
    server.stop()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="256 MiB and 10,000 files")
    parser.add_argument("--dir", default=None, help="where to put the stores (default: a temp dir)")
    args = parser.parse_args()
    size = (256 if args.quick else 1024) * MIB
    big_n = 10_000 if args.quick else 100_000
    root = tempfile.mkdtemp(prefix="pfsd-bench-", dir=args.dir)
    try:
        results: dict[str, dict[str, float]] = {}
        for child in (False, True):
            mode = "child" if child else "in-process"
            d = os.path.join(root, mode + "-tput")
            os.makedirs(d)
            server = Server(d, child)
            w, r = bench_throughput(server.api, size)
            server.stop()
            shutil.rmtree(d)
            results[mode] = {"write_MBps": w, "read_MBps": r}
            print(f"{mode:10s} {size // MIB} MiB file: write {w:7.1f} MB/s  read {r:7.1f} MB/s", flush=True)
            for n in (1_000, big_n):
                d = os.path.join(root, f"{mode}-{n}")
                os.makedirs(d)
                s = bench_scaling(d, n, child)
                shutil.rmtree(d)
                results[mode].update({f"{k}@{n}": v for k, v in s.items()})
                print(
                    f"{mode:10s} {n:>7,} files+commits: commit {s['commit_ms']:6.2f} ms"
                    f"  inspect {s['inspect_ms']:5.2f} ms  list page {s['list_page_ms']:5.2f} ms",
                    flush=True,
                )
        for mode, r in results.items():
            print(
                f"{mode}: commit time ratio {big_n:,}/1,000 = "
                f"{r[f'commit_ms@{big_n}'] / r['commit_ms@1000']:.2f}, inspect ratio "
                f"{r[f'inspect_ms@{big_n}'] / r['inspect_ms@1000']:.2f}, list page ratio "
                f"{r[f'list_page_ms@{big_n}'] / r['list_page_ms@1000']:.2f}"
            )
        ip, ch = results["in-process"], results["child"]
        print(
            f"child / in-process: write {ch['write_MBps'] / ip['write_MBps']:.2f}x, "
            f"read {ch['read_MBps'] / ip['read_MBps']:.2f}x, commit "
            f"{ch['commit_ms@1000'] / ip['commit_ms@1000']:.2f}x (time)"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
