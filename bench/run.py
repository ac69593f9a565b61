"""pachs3gw against the S3 servers users would otherwise pick, in one run.

    python -m bench [--quick] [--servers pachs3gw,moto,...] [--scenarios big,small,list]

Starts each server in turn on 127.0.0.1 with a fresh data dir (only one runs at a time),
measures it with the same long-lived client process (``bench/client.py``) plus curl, samples
the RSS of the server's whole process tree every 50 ms, prints one Markdown table (each
figure also as a ratio to pachs3gw from the same run) and writes raw JSON to bench/results/.
Peers come from ``bench/setup.sh``; one that is missing or fails is shown as ``n/a (reason)``.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from bench import peers

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MiB = 1024 * 1024

ALL_SCENARIOS = ("big", "small", "list")
DEFAULT_ORDER = ("pachs3gw", "s3layer", "moto", "s3rver", "rclone", "juicefs", "seaweedfs", "nginx")


# --------------------------------------------------------------------------- parameters

def params(args: argparse.Namespace) -> dict[str, Any]:
    if args.quick:
        p = dict(big_mib=128, big_reps=1, small_reps=3, small_secs=1.0, small_conc=16,
                 list_keys=5000, growth_at=1000, probe=100, list_reps=1, page_reps=3,
                 fill_budget=60.0, phase_budget=60.0)
    else:
        p = dict(big_mib=1024, big_reps=3, small_reps=3, small_secs=2.0, small_conc=16,
                 list_keys=100_000, growth_at=1000, probe=200, list_reps=3, page_reps=7,
                 fill_budget=50.0, phase_budget=20.0)
    for k in ("big_mib", "big_reps", "small_reps", "small_secs", "list_keys", "fill_budget",
              "phase_budget"):
        v = getattr(args, k, None)
        if v is not None:
            p[k] = v
    return p


# --------------------------------------------------------------------------- helpers

class Client:
    """The long-lived load client process (bench/client.py), one JSON line per command."""

    def __init__(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.client"], cwd=ROOT, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.info = json.loads(self.proc.stdout.readline())  # type: ignore[union-attr]

    def __call__(self, **cmd: Any) -> dict[str, Any]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("load client died")
        return json.loads(line)

    def close(self) -> None:
        try:
            assert self.proc.stdin
            self.proc.stdin.write('{"op": "quit"}\n')
            self.proc.stdin.close()
            self.proc.wait(10)
        except Exception:
            self.proc.kill()


class RSSSampler(threading.Thread):
    """Peak RSS of a process tree per named phase, sampled every ``interval`` seconds."""

    def __init__(self, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        import psutil
        self.psutil = psutil
        self.interval = interval
        self.root: Any = None
        self.phase = "idle"
        self.peaks: dict[str, float] = collections.defaultdict(float)
        self.samples = 0
        self.lock = threading.Lock()
        self.stopped = threading.Event()

    def attach(self, pid: int | None) -> None:
        with self.lock:
            self.root = self.psutil.Process(pid) if pid else None
            self.peaks = collections.defaultdict(float)

    def set_phase(self, name: str) -> None:
        self.sample()
        with self.lock:
            self.phase = name
        self.sample()

    def sample(self) -> None:
        with self.lock:
            root, phase = self.root, self.phase
        if root is None:
            return
        total = 0
        try:
            procs = [root] + root.children(recursive=True)
        except self.psutil.Error:
            return
        for p in procs:
            try:
                total += p.memory_info().rss
            except self.psutil.Error:
                pass
        with self.lock:
            self.samples += 1
            if total > self.peaks[phase]:
                self.peaks[phase] = total

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            self.sample()

    def peak_mib(self, *phases: str) -> float | None:
        vals = [self.peaks[p] for p in phases if p in self.peaks]
        return round(max(vals) / MiB, 1) if vals else None


def parse_wrk(out: str) -> dict[str, Any]:
    import re
    units = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    r: dict[str, Any] = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m:
        return {"error": out.strip()[-200:]}
    r["rps"] = float(m.group(1))
    m = re.search(r"(\d+) requests in", out)
    r["requests"] = int(m.group(1)) if m else 0
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if m:
            r[key] = float(m.group(1)) * units[m.group(2)]
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m:
        r["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors:.*?read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        r["socket_errors"] = sum(int(x) for x in m.groups())
    return r


def parse_hey(out: str) -> dict[str, Any]:
    """Requests/s, p50/p99 (ms), status counts of ``hey``'s summary."""
    import re
    r: dict[str, Any] = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m:
        return {"error": out.strip()[-200:]}
    r["rps"] = float(m.group(1))
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        m = re.search(rf"^\s+{pct}%+ in ([\d.]+) secs", out, re.M)
        if m:
            r[key] = float(m.group(1)) * 1e3
    statuses = {int(code): int(n) for code, n in re.findall(r"\[(\d{3})\]\s+(\d+) responses", out)}
    r["requests"] = sum(statuses.values())
    r["non2xx"] = sum(n for code, n in statuses.items() if not 200 <= code < 400)
    errors = re.search(r"Error distribution:(.*)", out, re.S)
    r["socket_errors"] = sum(int(n) for n in re.findall(r"\[(\d+)\]", errors.group(1))) if errors else 0
    return r


def calibrate(rounds: int = 5) -> list[float]:
    """A fixed CPU-bound loop (SHA-256 of 128 MiB), timed: how steady the machine is."""
    data = b"\0" * (128 * MiB)
    hashlib.sha256(data).digest()  # warm-up
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        hashlib.sha256(data).digest()
        out.append(time.perf_counter() - t0)
    return out


def summarize(values: list[float]) -> dict[str, Any]:
    vals = [v for v in values if v is not None]
    if not vals:
        return {"na": "no successful repetition"}
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "reps": vals}


def make_source(path: Path, size: int) -> None:
    if path.exists() and path.stat().st_size == size:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        left = size
        while left:
            n = min(left, 16 * MiB)
            f.write(os.urandom(n))
            left -= n
    tmp.rename(path)


def curl(server: peers.Server, method: str, bucket: str, key: str, src: Path | None,
         size: int, timeout: float) -> float:
    """One curl transfer; returns MB/s or raises."""
    url = f"{server.endpoint}/{bucket}/{key}"
    argv = ["curl", "-sS", "--max-time", str(int(timeout)), "-o", "/dev/null",
            "-w", "%{http_code} %{time_total} %{size_upload} %{size_download}"]
    if server.s3:
        argv += ["--aws-sigv4", f"aws:amz:{server.region}:s3",
                 "--user", f"{server.access_key}:{server.secret_key}",
                 "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"]
    if method == "PUT":
        assert src is not None
        argv += ["-T", str(src)]
    argv.append(url)
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 30)
    if r.returncode != 0:
        raise RuntimeError(f"curl exit {r.returncode}: {r.stderr.strip()[:200]}")
    code, t, up, down = r.stdout.split()
    moved = float(up) if method == "PUT" else float(down)
    if not code.startswith("2") or int(moved) != size:
        raise RuntimeError(f"curl {method} -> HTTP {code}, {int(moved)} of {size} bytes")
    return size / float(t) / 1e6


class Profiler:
    """py-spy attached to a process tree for one phase; summarized as self/inclusive shares."""

    def __init__(self, pid: int, out: Path) -> None:
        self.out = out
        self.text = ""
        exe = shutil.which("py-spy")
        if not exe:
            self.proc = None
            self.text = "py-spy not installed"
            return
        self.proc = subprocess.Popen(
            [exe, "record", "--pid", str(pid), "--subprocesses", "--rate", "200",
             "--format", "raw", "--output", str(out), "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)  # let it attach before the load starts

    def finish(self) -> dict[str, Any]:
        if self.proc is None:
            return {"error": self.text}
        import signal
        self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        if not self.out.exists():
            self.text = f"py-spy wrote nothing: {err[-300:]}"
            return {"error": self.text}
        summary = summarize_profile(self.out.read_text(errors="replace"))
        summary["raw"] = str(self.out)
        self.text = format_profile(summary)
        return summary


def summarize_profile(raw: str, top: int = 25) -> dict[str, Any]:
    """Collapsed stacks (``frame;frame;... count``) -> shares per process, leaf and inclusive."""
    total = 0
    per_proc: collections.Counter[str] = collections.Counter()
    leaf: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        # --subprocesses nests a child's stacks under its parent's "process N:cmd" frames
        idx = [i for i, f in enumerate(frames) if f.startswith("process ")]
        proc = frames[idx[-1]] if idx else "?"
        if idx:
            frames = frames[idx[-1] + 1:]
        proc_label = "pfsd" if "pachs3gw.pfsd" in proc else ("gateway" if proc != "?" else "?")
        frames = [f for f in frames if not f.startswith("thread ")]
        total += n
        per_proc[proc_label] += n
        if frames:
            leaf[f"{proc_label}: {_short(frames[-1])}"] += n
        for f in set(_short(f) for f in frames):
            incl[f"{proc_label}: {f}"] += n
        for f in set(_short(f) for f in frames if "pachs3gw/" in f):
            own[f"{proc_label}: {f}"] += n
    if not total:
        return {"samples": 0}
    pct = lambda c: round(100.0 * c / total, 1)  # noqa: E731
    return {
        "samples": total,
        "process_pct": {k: pct(v) for k, v in per_proc.most_common()},
        "self_pct": [(k, pct(v)) for k, v in leaf.most_common(top)],
        "inclusive_pct": [(k, pct(v)) for k, v in incl.most_common(top * 2)],
        "own_inclusive_pct": [(k, pct(v)) for k, v in own.most_common(top)],
    }


def _short(frame: str) -> str:
    # "func (path/to/module.py:123)" -> "func (module.py)"
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path = where.split(":")[0]
    parts = path.split("/")
    short = "/".join(parts[-2:]) if len(parts) > 1 else path
    return f"{name} ({short})"


def format_profile(s: dict[str, Any]) -> str:
    if not s.get("samples"):
        return "profile: no samples"
    lines = [f"profile: {s['samples']} samples; by process: "
             + ", ".join(f"{k} {v}%" for k, v in s["process_pct"].items()),
             "  top self (leaf) frames:"]
    lines += [f"    {v:5.1f}%  {k}" for k, v in s["self_pct"][:15]]
    lines.append("  top inclusive pachs3gw frames:")
    lines += [f"    {v:5.1f}%  {k}" for k, v in s["own_inclusive_pct"][:20]]
    return "\n".join(lines)


# --------------------------------------------------------------------------- scenarios

class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.p = params(args)
        self.workdir = Path(args.workdir)
        self.client = Client()
        self.rss = RSSSampler()
        self.rss.start()
        self.results: dict[str, dict[str, Any]] = {}
        self.current: peers.Server | None = None
        self.big_src = self.workdir / f"src-{self.p['big_mib']}MiB.bin"

    def log(self, msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    def conn(self, server: peers.Server) -> dict[str, Any]:
        return {"port": server.port, "access_key": server.access_key,
                "secret_key": server.secret_key, "region": server.region}

    def phase(self, res: dict[str, Any], name: str, fn: Callable[[], Any]) -> Any:
        """Run one phase, recording its peak RSS; an exception becomes n/a for it."""
        self.rss.set_phase(name)
        t0 = time.perf_counter()
        spy = None
        if name in self.args.profile and self.current is not None and self.current.name == "pachs3gw":
            spy = Profiler(self.current.pid(), self.workdir / f"profile-{name}.txt")
        try:
            return fn()
        except Exception as exc:
            res[name] = {"na": f"{type(exc).__name__}: {exc}"[:300]}
            self.log(f"  {name}: FAILED {exc}")
            return None
        finally:
            if spy is not None:
                res.setdefault("profile", {})[name] = spy.finish()
                self.log(spy.text)
            self.rss.set_phase("between")
            res.setdefault("_phase_secs", {})[name] = round(time.perf_counter() - t0, 2)

    def run_server(self, name: str) -> dict[str, Any]:
        cls = peers.SERVERS[name]
        server = cls(self.workdir / "servers" / name)
        self.current = server
        res: dict[str, Any] = {"loadavg_before": os.getloadavg()[0]}
        self.log(f"== {name}: starting")
        t0 = time.perf_counter()
        try:
            server.start()
        except peers.Unavailable as exc:
            self.log(f"== {name}: n/a ({exc})")
            return {"na": str(exc)[:300]}
        except Exception as exc:
            server.stop()
            return {"na": f"start failed: {exc}"[:300]}
        res["start_secs"] = round(time.perf_counter() - t0, 2)
        res["server"] = server.describe()
        self.rss.attach(server.pid())
        self.rss.set_phase("idle")
        time.sleep(1.0)
        try:
            if server.s3:
                for base in ("bench", "list"):
                    r = self.client(op="boto_call", call="create_bucket", bucket=server.bucket(base),
                                    **self.conn(server))
                    if "error" in r:
                        raise RuntimeError(f"create_bucket: {r['error']}")
            scen = [s for s in self.args.scenarios if s in server.scenarios]
            if "big" in scen:
                self.big(server, res)
            if "small" in scen:
                self.small(server, res)
            if "list" in scen:
                if server.s3:
                    self.listing(server, res)
                else:
                    res["list"] = {"na": "not S3 (static files)"}
        except Exception as exc:
            res["error"] = f"{type(exc).__name__}: {exc}"[:300]
            self.log(f"== {name}: aborted: {exc}")
        finally:
            if server.proc is not None and server.proc.poll() is not None:
                res["exited"] = f"server exited with {server.proc.returncode} during the run"
            res["rss_mib"] = {k: round(v / MiB, 1) for k, v in self.rss.peaks.items()}
            res["loadavg_after"] = os.getloadavg()[0]
            self.rss.attach(None)
            server.stop()
            if not self.args.keep:
                server.cleanup()
        self.log(f"== {name}: done in {time.perf_counter() - t0:.0f}s")
        return res

    # ---- 1 GiB (or --quick's 128 MiB) single PUT/GET with curl, multipart with boto3
    def big(self, server: peers.Server, res: dict[str, Any]) -> None:
        size = self.p["big_mib"] * MiB
        make_source(self.big_src, size)
        bucket = server.bucket("bench")
        reps = self.p["big_reps"]
        budget = self.p["phase_budget"]
        timeout = 300.0
        if not server.s3:
            dest_dir = server.path_for(bucket, "")  # type: ignore[attr-defined]
            dest_dir.mkdir(parents=True, exist_ok=True)
            for key in ("big", "big-mp"):
                try:
                    os.link(self.big_src, dest_dir / key)
                except OSError:
                    shutil.copyfile(self.big_src, dest_dir / key)

        def repeat(label: str, one: Callable[[], float]) -> None:
            vals = []
            for i in range(reps):
                t_rep = time.perf_counter()
                vals.append(one())
                # fewer repetitions only for a server so slow that one takes over the budget
                if i + 1 < reps and time.perf_counter() - t_rep > budget:
                    break
            res[label] = summarize(vals) | {"unit": "MB/s", "bytes": size}
            self.log(f"  {label}: {res[label]['median']:.1f} MB/s ({len(vals)} reps)")

        if server.s3:
            self.phase(res, "put_curl", lambda: repeat(
                "put_curl", lambda: curl(server, "PUT", bucket, "big", self.big_src, size, timeout)))
        else:
            res["put_curl"] = {"na": "static files (GET only)"}
        self.phase(res, "get_curl", lambda: repeat(
            "get_curl", lambda: curl(server, "GET", bucket, "big", None, size, timeout)))

        down = self.workdir / "download.bin"

        def boto(op: str, key: str) -> float:
            r = self.client(op=op, bucket=bucket, key=key,
                            file=str(self.big_src if op == "boto_upload" else down), **self.conn(server))
            if "error" in r:
                raise RuntimeError(r["error"])
            if r["bytes"] != size:
                raise RuntimeError(f"{op} moved {r['bytes']} of {size} bytes")
            return float(r["mb_s"])

        if server.s3:
            self.phase(res, "up_boto", lambda: repeat("up_boto", lambda: boto("boto_upload", "big-mp")))
        else:
            res["up_boto"] = {"na": "static files (GET only)"}
        self.phase(res, "down_boto", lambda: repeat("down_boto", lambda: boto("boto_download", "big-mp")))
        down.unlink(missing_ok=True)

    # ---- 4 KiB objects, 16 connections
    def small(self, server: peers.Server, res: dict[str, Any]) -> None:
        bucket = server.bucket("bench")
        reps, secs, conc = self.p["small_reps"], self.p["small_secs"], self.p["small_conc"]
        cap = 200_000
        base = dict(op="small", bucket=bucket, prefix="obj/", concurrency=conc, **self.conn(server))

        def record(label: str, runs: list[dict[str, Any]]) -> None:
            ok = [r for r in runs if "error" not in r and r.get("ops")]
            errs = sum(int(r.get("errors", 0)) for r in runs if "error" not in r)
            if not ok:
                why = next((r.get("error") or r.get("first_error") for r in runs
                            if r.get("error") or r.get("first_error")), "no successful request")
                res[label] = {"na": str(why)[:300]}
                self.log(f"  {label}: n/a {why}")
                return
            res[label] = {
                "rps": summarize([r["rps"] for r in ok]),
                "p50_ms": summarize([r["p50_ms"] for r in ok]),
                "p99_ms": summarize([r["p99_ms"] for r in ok]),
                "ops": sum(r["ops"] for r in ok), "errors": errs,
                "first_error": next((r["first_error"] for r in runs if r.get("first_error")), None),
            }
            self.log(f"  {label}: {res[label]['rps']['median']:.0f} req/s p50 "
                     f"{res[label]['p50_ms']['median']:.2f} ms p99 {res[label]['p99_ms']['median']:.2f} ms"
                     f" errors {errs}")

        if server.s3:
            written = 0
            runs = []

            def puts() -> None:
                nonlocal written
                for _ in range(reps):
                    r = self.client(**base, method="PUT", start=written, stop=cap, size=4096,
                                    duration=secs)
                    runs.append(r)
                    written += int(r.get("issued", 0))
                record("small_put", runs)
            self.phase(res, "small_put", puts)
            n = written
        else:
            n = 5000
            d = server.path_for(bucket, "obj")  # type: ignore[attr-defined]
            d.mkdir(parents=True, exist_ok=True)
            body = (b"0123456789abcdef" * 256)
            for i in range(n):
                (d / f"{i:07d}").write_bytes(body)
            res["small_put"] = {"na": "static files (GET only)"}
        if n == 0:
            return
        for method in ("GET", "HEAD"):
            label = f"small_{method.lower()}"
            self.phase(res, label, lambda m=method, lb=label: record(lb, [
                self.client(**base, method=m, start=0, stop=n, duration=secs, expect_len=4096)
                for _ in range(reps)]))
        if shutil.which("wrk"):
            self.phase(res, "wrk_get", lambda: self.wrk_get(server, res, bucket, n))
        else:
            res["wrk_get"] = {"na": "wrk not installed"}
        if shutil.which("hey"):
            self.phase(res, "hey_head", lambda: self.hey_head(server, res, bucket))
        else:
            res["hey_head"] = {"na": "hey not installed"}
        if server.s3:
            chunk = n // reps

            def deletes() -> None:
                record("small_delete", [
                    self.client(**base, method="DELETE", start=i * chunk, stop=(i + 1) * chunk,
                                duration=secs) for i in range(reps)])
            self.phase(res, "small_delete", deletes)
        else:
            res["small_delete"] = {"na": "static files (GET only)"}

    def wrk_get(self, server: peers.Server, res: dict[str, Any], bucket: str, n: int) -> None:
        """4 KiB GETs with wrk (C, 1 thread, 16 connections) over presigned URLs."""
        from bench.client import Signer
        signer = Signer(server.access_key, server.secret_key, server.region)
        host = f"127.0.0.1:{server.port}"
        paths = self.workdir / "wrk-paths.txt"
        with open(paths, "w") as f:
            for i in range(min(n, 20000)):
                f.write(signer.presign("GET", f"/{bucket}/obj/{i:07d}", host) + "\n")
        script = self.workdir / "wrk-get.lua"
        script.write_text(
            f'local paths = {{}}\nfor line in io.lines("{paths}") do paths[#paths + 1] = line end\n'
            'local i = 0\nrequest = function()\n  i = i + 1\n  if i > #paths then i = 1 end\n'
            '  return wrk.format("GET", paths[i])\nend\n')
        secs = max(1, round(self.p["small_secs"]))
        self.load_tool(res, "wrk_get", ["wrk", "-t1", "-c16", f"-d{secs}s", "--latency",
                                        "-s", str(script), f"http://{host}"], parse_wrk)

    def hey_head(self, server: peers.Server, res: dict[str, Any], bucket: str) -> None:
        """4 KiB HEADs with hey (Go, 1 CPU, 16 keep-alive connections), one presigned URL.

        wrk cannot drive HEAD (it waits for the body the Content-Length announces).
        """
        from bench.client import Signer
        signer = Signer(server.access_key, server.secret_key, server.region)
        host = f"127.0.0.1:{server.port}"
        url = f"http://{host}" + signer.presign("HEAD", f"/{bucket}/obj/{0:07d}", host)
        secs = max(1, round(self.p["small_secs"]))
        self.load_tool(res, "hey_head", ["hey", "-m", "HEAD", "-c", "16", "-cpus", "1",
                                         "-z", f"{secs}s", url], parse_hey)

    def load_tool(self, res: dict[str, Any], label: str, argv: list[str],
                  parse: Callable[[str], dict[str, Any]]) -> None:
        """Run a load generator (wrk, hey) ``small_reps`` times; record req/s and latency.

        A run counts if at most 1% of its answers were not 2xx/3xx.
        """
        secs = self.p["small_secs"]
        runs = [parse((r.stdout or "") + (r.stderr or "")) for r in (
            subprocess.run(argv, capture_output=True, text=True, timeout=secs + 60)
            for _ in range(self.p["small_reps"]))]
        ok = [r for r in runs if "rps" in r and r.get("non2xx", 0) <= r.get("requests", 0) // 100]
        if not ok:
            res[label] = {"na": str(runs[0].get("error") or f"non-2xx: {runs[0].get('non2xx')}")[:200]}
            return
        res[label] = {"rps": summarize([r["rps"] for r in ok]),
                      "p50_ms": summarize([r["p50_ms"] for r in ok]),
                      "p99_ms": summarize([r["p99_ms"] for r in ok]),
                      "errors": sum(r.get("non2xx", 0) + r.get("socket_errors", 0) for r in runs)}
        self.log(f"  {label}: {res[label]['rps']['median']:.0f} req/s "
                 f"p50 {res[label]['p50_ms']['median']:.2f} ms")

    # ---- listing of N keys, and PUT cost growth with history
    def listing(self, server: peers.Server, res: dict[str, Any]) -> None:
        bucket = server.bucket("list")
        N, at, probe = self.p["list_keys"], self.p["growth_at"], self.p["probe"]
        conn = self.conn(server)
        deadline = time.perf_counter() + self.p["fill_budget"]
        filled = 0
        fill_stats: list[dict[str, Any]] = []
        fill_errors: list[int] = []

        def fill(upto: int) -> None:
            nonlocal filled
            while filled < upto:
                left = deadline - time.perf_counter()
                if left <= 0:
                    return
                r = self.client(op="small", method="PUT", bucket=bucket, prefix="k/", start=filled,
                                stop=upto, size=0, concurrency=self.p["small_conc"], duration=left,
                                **conn)
                if "error" in r:
                    raise RuntimeError(r["error"])
                # a few failed PUTs (e.g. rclone's 500 on racing mkdirs) are counted, not hidden
                if r["errors"] > max(10, r["issued"] // 100):
                    raise RuntimeError(f"{r['errors']} failed PUTs: {r['first_error']}")
                fill_errors.append(r["errors"])
                filled += r["issued"]
                fill_stats.append(r)

        def probe_at(label: str) -> None:
            before = filled
            r = self.client(op="small", method="PUT", bucket=bucket, prefix="k/", start=filled,
                            stop=filled + probe, size=4096, concurrency=1, duration=60, **conn)
            if "error" in r or not r.get("ops"):
                res[label] = {"na": str(r.get("error") or r.get("first_error"))[:300]}
                return
            res[label] = {"earlier_objects": before, "p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"],
                          "ops": r["ops"], "errors": r["errors"]}
            self.log(f"  {label}: after {before} objects: p50 {r['p50_ms']:.2f} ms p99 {r['p99_ms']:.2f} ms")

        def do_fill() -> None:
            nonlocal filled
            fill(at)
            self.rss.set_phase("fill")
            probe_at("growth_first")
            filled += res.get("growth_first", {}).get("ops", 0) + res.get("growth_first", {}).get("errors", 0)
            fill(N)
            probe_at("growth_last")
            filled += res.get("growth_last", {}).get("ops", 0) + res.get("growth_last", {}).get("errors", 0)
            ops = sum(r["ops"] for r in fill_stats)
            secs = sum(r["elapsed"] for r in fill_stats)
            res["fill"] = {"keys": filled, "target": N + probe, "errors": sum(fill_errors),
                           "first_error": next((r["first_error"] for r in fill_stats if r.get("first_error")), None),
                           "rps": ops / secs if secs else 0.0,
                           "secs": round(secs, 1)}
            self.log(f"  fill: {filled} keys at {res['fill']['rps']:.0f} PUT/s")
            if filled < N + probe:
                res["fill"]["note"] = f"only {filled} of {N + probe} keys in {self.p['fill_budget']:.0f}s"
        self.phase(res, "fill", do_fill)
        if not filled:
            return

        def do_list() -> None:
            runs = []
            t_start = time.perf_counter()
            for _ in range(self.p["list_reps"]):
                runs.append(self.client(op="list_all", bucket=bucket, timeout=300, **conn))
                if time.perf_counter() - t_start > self.p["phase_budget"]:
                    break
            ok = [r for r in runs if "error" not in r]
            if not ok:
                res["list_all"] = {"na": runs[0]["error"][:300]}
                return
            if any(r["keys"] != filled for r in ok):
                res["list_all_mismatch"] = [r["keys"] for r in ok]
            res["list_all"] = summarize([r["keys_per_s"] for r in ok]) | {
                "keys": ok[0]["keys"], "pages": ok[0]["pages"],
                "page_p50_ms": statistics.median(r["page_p50_ms"] for r in ok)}
            self.log(f"  list_all: {ok[0]['keys']} keys at {res['list_all']['median']:.0f} keys/s")
            first = self.client(op="list_page", bucket=bucket, repeat=self.p["page_reps"], **conn)
            last_start = max(0, filled - 1001)
            last = self.client(op="list_page", bucket=bucket, repeat=self.p["page_reps"],
                               start_after=f"k/{last_start:07d}", **conn)
            res["page_first"] = first
            res["page_last"] = last
            self.log(f"  page at start {first.get('ms', float('nan')):.2f} ms, at end "
                     f"{last.get('ms', float('nan')):.2f} ms")
        self.phase(res, "list", do_list)

    def run(self) -> dict[str, Any]:
        started = time.time()
        calib_before = calibrate()
        for name in self.args.servers:
            self.results[name] = self.run_server(name)
        calib_after = calibrate()
        calib = calib_before + calib_after
        self.client.close()
        self.rss.stopped.set()
        return {
            "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "command": "python -m bench " + " ".join(sys.argv[1:]),
            "mode": "quick" if self.args.quick else "full",
            "params": self.p,
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                        "python": platform.python_version(), "client_loop": self.client.info.get("loop")},
            "calibration_s": {"before": calib_before, "after": calib_after,
                              "spread_pct": round((max(calib) - min(calib)) / min(calib) * 100, 1)},
            "total_secs": round(time.time() - started, 1),
            "results": self.results,
        }


# --------------------------------------------------------------------------- table

ROWS: list[tuple[str, str, str, bool]] = [
    # (label, path in results, kind, higher_is_better)
    ("1 GiB PUT, curl (MB/s)", "put_curl", "med", True),
    ("1 GiB GET, curl (MB/s)", "get_curl", "med", True),
    ("1 GiB upload_file, boto3 multipart (MB/s)", "up_boto", "med", True),
    ("1 GiB download_file, boto3 (MB/s)", "down_boto", "med", True),
    ("4 KiB PUT ×16 conns (req/s)", "small_put.rps", "med", True),
    ("4 KiB PUT p50 / p99 (ms)", "small_put", "lat", False),
    ("4 KiB GET ×16 conns (req/s)", "small_get.rps", "med", True),
    ("4 KiB GET p50 / p99 (ms)", "small_get", "lat", False),
    ("4 KiB GET, wrk ×16 presigned (req/s)", "wrk_get.rps", "med", True),
    ("4 KiB GET, wrk p50 / p99 (ms)", "wrk_get", "lat", False),
    ("4 KiB HEAD ×16 conns (req/s)", "small_head.rps", "med", True),
    ("4 KiB HEAD p50 / p99 (ms)", "small_head", "lat", False),
    ("4 KiB HEAD, hey ×16 presigned (req/s)", "hey_head.rps", "med", True),
    ("4 KiB HEAD, hey p50 / p99 (ms)", "hey_head", "lat", False),
    ("4 KiB DELETE ×16 conns (req/s)", "small_delete.rps", "med", True),
    ("4 KiB DELETE p50 / p99 (ms)", "small_delete", "lat", False),
    ("fill: empty-object PUT ×16 (req/s)", "fill", "fill", True),
    ("ListObjectsV2 whole bucket (keys/s)", "list_all", "med", True),
    ("ListObjectsV2 first page (ms)", "page_first", "page", False),
    ("ListObjectsV2 last page (ms)", "page_last", "page", False),
    ("4 KiB PUT one at a time, p50 after 1k writes (ms)", "growth_first", "growth", False),
    ("4 KiB PUT one at a time, p50 after N writes (ms)", "growth_last", "growth", False),
    ("peak RSS idle (MiB)", "rss:idle", "rss", False),
    ("peak RSS, big transfers (MiB)", "rss:put_curl,get_curl,up_boto,down_boto", "rss", False),
    ("peak RSS, 4 KiB ops (MiB)", "rss:small_put,small_get,small_head,small_delete", "rss", False),
    ("peak RSS, fill + listing (MiB)", "rss:fill,list", "rss", False),
]


def _get(res: dict[str, Any], path: str) -> Any:
    cur: Any = res
    for part in path.split("."):
        if not isinstance(cur, dict):
            return None
        if "na" in cur:
            return cur
        if part not in cur:
            return None
        cur = cur[part]
    return cur


def value(res: dict[str, Any], path: str, kind: str, planned: int = 1) -> tuple[float | None, str]:
    """(comparable number, display text) for one cell; number None means n/a."""
    if "na" in res:
        return None, "n/a"
    if kind == "rss":
        phases = path.split(":", 1)[1].split(",")
        vals = [res.get("rss_mib", {}).get(p) for p in phases]
        vals = [v for v in vals if v]
        if not vals:
            return None, "–"
        return max(vals), f"{max(vals):.0f}"
    node = _get(res, path)
    if node is None:
        return None, "–"
    if "na" in node:
        why = "static" if str(node["na"]).startswith("static") else str(node["na"])[:60]
        return None, f"n/a ({why})"
    if kind == "med":
        v = node["median"]
        n = len(node.get("reps", []))
        note = f" (n={n})" if n < planned else ""
        return v, (f"{v:,.0f}" if v >= 100 else f"{v:.1f}") + note
    if kind == "lat":
        p50, p99 = node["p50_ms"]["median"], node["p99_ms"]["median"]
        return p50, f"{p50:.2f} / {p99:.1f}"
    if kind == "fill":
        v = node["rps"]
        note = f" ({node['keys']:,} keys)" if node["keys"] < node["target"] else ""
        if node.get("errors"):
            note += f" ({node['errors']} failed)"
        return v, f"{v:,.0f}{note}"
    if kind == "page":
        if "error" in node:
            return None, "n/a (error)"
        return node["ms"], f"{node['ms']:.1f}"
    if kind == "growth":
        return node["p50_ms"], f"{node['p50_ms']:.2f} (@{node['earlier_objects']:,})"
    raise ValueError(kind)


def table(report: dict[str, Any]) -> str:
    results = report["results"]
    names = list(results)
    big = report["params"]["big_mib"]
    size_label = "1 GiB" if big == 1024 else f"{big} MiB"
    lines = ["| scenario | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    ref = results.get("pachs3gw", {})
    for label, path, kind, higher in ROWS:
        label = label.replace("1 GiB", size_label)
        if kind == "growth" and "after N" in label:
            label = label.replace("after N", f"after {report['params']['list_keys'] // 1000}k")
        cells = []
        refv, _ = value(ref, path, kind) if ref else (None, "")
        prm = report["params"]
        planned = (prm["big_reps"] if path in ("put_curl", "get_curl", "up_boto", "down_boto")
                   else prm["list_reps"] if path == "list_all" else 1)
        for n in names:
            v, text = value(results[n], path, kind, planned)
            if n != "pachs3gw" and v is not None and refv:
                r = v / refv
                text += f" ({r:.0f}×)" if r >= 10 else f" ({r:.2g}×)"
            cells.append(text)
        arrow = "↑" if higher else "↓"
        lines.append(f"| {label} {arrow} | " + " | ".join(cells) + " |")
    for n in names:
        if "na" in results[n]:
            lines.append(f"\n{n}: n/a ({results[n]['na'][:200]})")
        for k in ("error", "exited"):
            if k in results[n]:
                lines.append(f"\n{n}: {results[n][k][:200]}")
    return "\n".join(lines)


def gaps(report: dict[str, Any]) -> list[tuple[float, str, str, float, float]]:
    """Scenarios where pachs3gw trails the best S3 peer: (factor, row, peer, ours, theirs)."""
    results = report["results"]
    ref = results.get("pachs3gw")
    out = []
    if not ref or "na" in ref:
        return out
    for label, path, kind, higher in ROWS:
        if kind == "lat":  # the same scenario as its req/s row
            continue
        ours, _ = value(ref, path, kind)
        if not ours:
            continue
        best = None
        for n, res in results.items():
            if n in ("pachs3gw", "nginx"):
                continue
            v, _ = value(res, path, kind)
            if v is None or v <= 0:
                continue
            factor = (v / ours) if higher else (ours / v)
            if best is None or factor > best[0]:
                best = (factor, label, n, ours, v)
        if best and best[0] > 1:
            out.append(best)
    return sorted(out, reverse=True)


def noise(report: dict[str, Any]) -> str:
    spreads = []
    for res in report["results"].values():
        for node in res.values() if isinstance(res, dict) else []:
            if not isinstance(node, dict):
                continue
            # throughputs only (MB/s, req/s, keys/s); tail latencies are noisier by nature
            for sub in [node] + [v for k, v in node.items() if isinstance(v, dict) and k == "rps"]:
                if "reps" in sub and len(sub["reps"]) > 1 and sub["median"]:
                    spreads.append((sub["max"] - sub["min"]) / sub["median"] * 100)
    cal = report["calibration_s"]
    text = f"CPU calibration loop (SHA-256 of 128 MiB, 5 runs before and 5 after): min–max spread {cal['spread_pct']}%."
    loads = [v.get("loadavg_before") for v in report["results"].values() if v.get("loadavg_before") is not None]
    if loads:
        text += f" 1-min load average at each server's start: {min(loads):.1f}–{max(loads):.1f} on {os.cpu_count()} CPUs."
    if spreads:
        spreads.sort()
        text += (f" Throughput repetitions: median min–max spread {statistics.median(spreads):.0f}% "
                 f"of the median, worst {spreads[-1]:.0f}% ({len(spreads)} figures with ≥2 reps).")
    return text


# --------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: under 5 minutes")
    ap.add_argument("--servers", default=",".join(DEFAULT_ORDER),
                    help=f"comma-separated, from {','.join(DEFAULT_ORDER)}")
    ap.add_argument("--scenarios", default=",".join(ALL_SCENARIOS),
                    help="comma-separated, from big,small,list")
    ap.add_argument("--workdir", default=os.environ.get("BENCH_WORKDIR", "/tmp/pachs3gw-bench"))
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--keep", action="store_true", help="keep the servers' data dirs")
    ap.add_argument("--profile", default="",
                    help="comma-separated phases (e.g. small_put,fill,list) to record with py-spy "
                         "(--subprocesses) on pachs3gw; summary printed and stored in the JSON")
    ap.add_argument("--big-mib", type=int, dest="big_mib")
    ap.add_argument("--big-reps", type=int, dest="big_reps")
    ap.add_argument("--small-reps", type=int, dest="small_reps")
    ap.add_argument("--small-secs", type=float, dest="small_secs")
    ap.add_argument("--list-keys", type=int, dest="list_keys")
    ap.add_argument("--fill-budget", type=float, dest="fill_budget",
                    help="seconds per server to create the listing keys (default 60 quick, 50 full)")
    ap.add_argument("--phase-budget", type=float, dest="phase_budget",
                    help="seconds after which a big transfer or listing stops repeating")
    ap.add_argument("--render", metavar="JSON", help="print the table of a saved result and exit")
    args = ap.parse_args(argv)
    if args.render:
        report = json.loads(Path(args.render).read_text())
        print_report(report, Path(args.render))
        return
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    for s in args.servers:
        if s not in peers.SERVERS:
            ap.error(f"unknown server {s!r}")
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    args.profile = [s.strip() for s in args.profile.split(",") if s.strip()]
    for s in args.scenarios:
        if s not in ALL_SCENARIOS:
            ap.error(f"unknown scenario {s!r}")
    Path(args.workdir).mkdir(parents=True, exist_ok=True)

    bench = Bench(args)
    report = bench.run()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = out / f"{stamp}-{report['mode']}.json"
    path.write_text(json.dumps(report, indent=1, default=str))
    print_report(report, path)


def print_report(report: dict[str, Any], path: Path) -> None:
    print()
    print(f"`{report['command']}` — {report['mode']} mode, {report['total_secs']:.0f} s, "
          f"{report['machine']['cpus']} CPUs; medians of {report['params']['big_reps']} repetitions (big "
          f"objects), {report['params']['small_reps']} windows (4 KiB), "
          f"{report['params']['list_reps']} (whole listing); "
          f"(×) = ratio to pachs3gw in this run, ↑ higher is better, ↓ lower is better.")
    print()
    print(table(report))
    print()
    print(noise(report))
    g = gaps(report)
    if g:
        f, label, peer, ours, theirs = g[0]
        print(f"Furthest behind: {label}: pachs3gw {ours:.3g} vs {peer} {theirs:.3g} ({f:.1f}×).")
    print(f"Raw results: {path}")


if __name__ == "__main__":
    main()
