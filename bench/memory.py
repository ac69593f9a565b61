"""Peak memory of the gateway while it moves big objects.

Starts ``twistd -n pachs3gw`` on the embedded default with a fresh data dir,
then PUTs and GETs one large object with curl (a single streamed request)
and uploads/downloads one with boto3 (multipart, 8 MiB parts), sampling the
RSS of the gateway process and of its embedded PFS child every 20 ms.

    python -m bench.memory [--size-mib 2048] [--multipart-mib 1024]

The baseline is the idle RSS measured in the same run, so the figures read
as "grew by N MB whatever the object size".
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except (FileNotFoundError, ProcessLookupError):
        return 0


def children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(c) for c in f.read().split()]
    except FileNotFoundError:
        pass
    return found


class PeakSampler:
    """Samples the gateway's and its children's RSS on a thread of its own."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid = pid
        self.interval = interval
        self.gateway_peak = 0
        self.children_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.gateway_peak = max(self.gateway_peak, rss_bytes(self.pid))
            self.children_peak = max(
                self.children_peak, sum(rss_bytes(c) for c in children(self.pid))
            )
            time.sleep(self.interval)


def start_gateway(work: Path) -> tuple[subprocess.Popen[bytes], int]:
    log = work / "gateway.log"
    env = dict(os.environ, PYTHONPATH=str(ROOT), MALLOC_ARENA_MAX="2")
    process = subprocess.Popen(
        [
            sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
            "--nodaemon", "--pidfile=", f"--logfile={log}",
            "pachs3gw", "--port", "tcp:0:interface=127.0.0.1", "--data-dir", str(work / "data"),
        ],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
    )
    for _ in range(600):
        if log.exists():
            found = re.search(r"listening on .*?port=(\d+)", log.read_text())
            if found:
                return process, int(found.group(1))
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("gateway did not start")


def write_random_file(path: Path, size: int) -> None:
    block = os.urandom(16 * 1024 * 1024)
    with open(path, "wb") as f:
        written = 0
        while written < size:
            piece = block[: min(len(block), size - written)]
            f.write(piece)
            written += len(piece)


def mb(n: int) -> str:
    return f"{n / 1e6:.0f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--multipart-mib", type=int, default=1024)
    args = parser.parse_args()

    import boto3

    with tempfile.TemporaryDirectory(prefix="pachs3gw-mem-") as tmp:
        work = Path(tmp)
        process, port = start_gateway(work)
        url = f"http://127.0.0.1:{port}"
        try:
            s3 = boto3.client(
                "s3", endpoint_url=url, aws_access_key_id="k", aws_secret_access_key="s",
                region_name="us-east-1",
            )
            s3.create_bucket(Bucket="master.memory")
            time.sleep(1)
            idle_gateway = rss_bytes(process.pid)
            idle_children = sum(rss_bytes(c) for c in children(process.pid))
            print(f"idle: gateway {mb(idle_gateway)}, embedded PFS {mb(idle_children)}")

            big = work / "big.bin"
            write_random_file(big, args.size_mib * 1024 * 1024)
            rows = []

            def phase(name: str, action) -> None:  # type: ignore[no-untyped-def]
                with PeakSampler(process.pid) as sampler:
                    started = time.monotonic()
                    action()
                    seconds = time.monotonic() - started
                size = big.stat().st_size if "multipart" not in name else args.multipart_mib * 1024 * 1024
                rows.append((name, sampler.gateway_peak, sampler.children_peak, size / seconds / 1e6))
                print(
                    f"{name:28s} gateway peak {mb(sampler.gateway_peak):>7s} "
                    f"(x{sampler.gateway_peak / idle_gateway:.2f} idle)  "
                    f"embedded PFS peak {mb(sampler.children_peak):>7s}  {size / seconds / 1e6:7.1f} MB/s",
                    flush=True,
                )

            phase(
                f"curl PUT {args.size_mib} MiB",
                lambda: subprocess.run(
                    ["curl", "-sf", "-T", str(big), f"{url}/master.memory/big"], check=True
                ),
            )
            phase(
                f"curl GET {args.size_mib} MiB",
                lambda: subprocess.run(
                    ["curl", "-sf", "-o", "/dev/null", f"{url}/master.memory/big"], check=True
                ),
            )
            part = work / "multipart.bin"
            os.truncate(big, args.multipart_mib * 1024 * 1024)
            big.rename(part)
            big = part
            phase(
                f"boto3 multipart PUT {args.multipart_mib} MiB",
                lambda: s3.upload_file(str(part), "master.memory", "multipart"),
            )
            phase(
                f"boto3 multipart GET {args.multipart_mib} MiB",
                lambda: s3.download_file("master.memory", "multipart", os.devnull),
            )
        finally:
            process.terminate()
            process.wait(30)


if __name__ == "__main__":
    main()
