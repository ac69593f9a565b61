"""Setup, start and stop of each server the bench compares: pachs3gw and its peers.

Every server runs on 127.0.0.1 on free ports with a fresh data directory, as a child process
(its whole process tree is what the RSS sampler measures). A server that is not installed or
does not come up raises ``Unavailable`` with a short reason, reported as ``n/a (reason)``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
NODE_DIR = HERE / ".node"


class Unavailable(Exception):
    """The server could not be installed or started; the message is the reason shown."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _which(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise Unavailable(f"{name} not installed (run bench/setup.sh)")
    return found


def _tail(path: Path, n: int = 600) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    text = text.strip().replace("\n", " | ")
    return text[-n:]


class Server:
    """One server under test. Subclasses fill ``argv``/``env`` in ``prepare``."""

    name = "?"
    access_key = "benchkey"
    secret_key = "benchsecret1234"
    region = "us-east-1"
    signed = True            # requests must carry a valid SigV4 signature
    s3 = True                # speaks S3 (False: nginx, static GETs only)
    scenarios = ("big", "small", "list")  # what it is measured on
    start_timeout = 60.0

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.data = workdir / "data"
        self.log = workdir / "server.log"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.version = ""

    # ---- naming
    def bucket(self, base: str) -> str:
        return base

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ---- lifecycle
    def prepare(self) -> tuple[list[str], dict[str, str]]:
        raise NotImplementedError

    def start(self) -> None:
        if self.workdir.exists():
            shutil.rmtree(self.workdir, ignore_errors=True)
        self.data.mkdir(parents=True)
        argv, env = self.prepare()
        full_env = dict(os.environ)
        full_env.update(env)
        self._logf = open(self.log, "ab")
        self.proc = subprocess.Popen(
            argv, cwd=self.workdir, env=full_env, stdin=subprocess.DEVNULL,
            stdout=self._logf, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Unavailable(f"exited {self.proc.returncode} at start: {_tail(self.log, 300)}")
            self.discover_port()
            if self.port and self.ready():
                return
            time.sleep(0.1)
        self.stop()
        raise Unavailable(f"not ready in {self.start_timeout:.0f}s: {_tail(self.log, 300)}")

    def discover_port(self) -> None:
        """Ports are chosen up front by default; pachs3gw reports its own."""

    def ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                s.settimeout(2)
                return s.recv(12).startswith(b"HTTP/1.")
        except OSError:
            return False

    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
        else:
            # the leader is gone; make sure no member of its group lingers
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.proc = None
        try:
            self._logf.close()
        except Exception:
            pass

    def cleanup(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "endpoint": self.endpoint,
                "signed": self.signed}


class Pachs3gw(Server):
    name = "pachs3gw"
    # Pachyderm's convention: access key = secret key (= the token when auth is on). With auth
    # off any key is let in; signing with secret = access key is valid either way.
    access_key = "benchkey"
    secret_key = "benchkey"
    signed = False

    def bucket(self, base: str) -> str:
        return f"master.{base}"

    def prepare(self) -> tuple[list[str], dict[str, str]]:
        self.logfile = self.workdir / "gateway.log"
        # twistd itself (``python -m twisted`` is Twisted's other runner, ``twist``)
        argv = [sys.executable, "-c", "__import__('twisted.scripts.twistd', fromlist=['run']).run()",
                "--nodaemon", "--pidfile=",
                f"--logfile={self.logfile}", "pachs3gw",
                "--port", "tcp:0:interface=127.0.0.1", "--data-dir", str(self.data)]
        env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
               "MALLOC_ARENA_MAX": "2"}
        try:
            self.version = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                          capture_output=True, text=True).stdout.strip()
        except OSError:
            pass
        return argv, env

    def discover_port(self) -> None:
        if self.port:
            return
        try:
            text = self.logfile.read_text(errors="replace")
        except OSError:
            return
        found = re.search(r"pachs3gw listening on .*?port=(\d+)", text)
        if found:
            self.port = int(found.group(1))

    def start(self) -> None:
        try:
            super().start()
        except Unavailable as exc:
            raise Unavailable(f"{exc} {_tail(self.workdir / 'gateway.log', 300)}") from None


class S3Layer(Server):
    """pachs3gw's S3 layer over its in-memory backend (``bench/s3layer.py``): no PFS.

    Only the 4 KiB scenario: it tracks the per-request cost of the HTTP/S3 code.
    """

    name = "s3layer"
    scenarios = ("small",)

    def bucket(self, base: str) -> str:
        return f"master.{base}"

    def prepare(self) -> tuple[list[str], dict[str, str]]:
        self.version = "memory backend"
        self.port = free_port()
        argv = [sys.executable, "-m", "bench.s3layer", "--port", str(self.port),
                "--access-key", self.access_key, "--secret-key", self.secret_key]
        env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
               "MALLOC_ARENA_MAX": "2"}
        return argv, env


class Moto(Server):
    name = "moto"
    signed = False  # moto accepts any credentials without checking signatures

    def prepare(self) -> tuple[list[str], dict[str, str]]:
        _which("moto_server")
        import importlib.metadata as md
        self.version = md.version("moto")
        self.port = free_port()
        return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)], {}


class S3rver(Server):
    name = "s3rver"
    access_key = "S3RVER"
    secret_key = "S3RVER"

    def prepare(self) -> tuple[list[str], dict[str, str]]:
        node = _which("node")
        script = NODE_DIR / "node_modules" / "s3rver" / "bin" / "s3rver.js"
        if not script.exists():
            raise Unavailable("s3rver not installed (run bench/setup.sh)")
        try:
            import json
            self.version = json.loads((script.parent.parent / "package.json").read_text())["version"]
        except Exception:
            pass
        self.port = free_port()
        # s3rver makes ListObjectsV2 continuation tokens with DES: OpenSSL 3 needs its legacy provider
        return [node, "--openssl-legacy-provider", str(script), "-d", str(self.data), "-a", "127.0.0.1", "-p", str(self.port),
                "--silent", "--no-vhost-buckets"], {}


class Rclone(Server):
    name = "rclone"

    def prepare(self) -> tuple[list[str], dict[str, str]]:
        rclone = _which("rclone")
        self.version = subprocess.run([rclone, "version"], capture_output=True, text=True).stdout.split("\n")[0]
        self.port = free_port()
        return [rclone, "serve", "s3", "--config", "/dev/null", "--addr", f"127.0.0.1:{self.port}",
                "--auth-key", f"{self.access_key},{self.secret_key}", str(self.data)], {}


class JuiceFS(Server):
    name = "juicefs"
    access_key = "benchkey"
    secret_key = "benchsecret1234"

    def prepare(self) -> tuple[list[str], dict[str, str]]:
        jfs = _which("juicefs")
        self.version = subprocess.run([jfs, "version"], capture_output=True, text=True).stdout.strip()
        meta = f"sqlite3://{self.data / 'meta.db'}"
        blobs = self.data / "blobs"
        blobs.mkdir()
        fmt = subprocess.run([jfs, "format", "--storage", "file", "--bucket", f"{blobs}/",
                              "--trash-days", "0", meta, "bench"],
                             capture_output=True, text=True, cwd=self.workdir)
        if fmt.returncode != 0:
            raise Unavailable(f"juicefs format failed: {(fmt.stderr or fmt.stdout)[-300:]}")
        self.port, metrics = free_ports(2)
        argv = [jfs, "gateway", "--no-usage-report", "--no-agent", "--multi-buckets", "--keep-etag",
                "--metrics", f"127.0.0.1:{metrics}", "--log", str(self.workdir / "gateway.log"),
                meta, f"127.0.0.1:{self.port}"]
        env = {"MINIO_ROOT_USER": self.access_key, "MINIO_ROOT_PASSWORD": self.secret_key}
        return argv, env


class SeaweedFS(Server):
    name = "seaweedfs"
    signed = False  # no identities configured: S3 auth is off
    start_timeout = 90.0

    def prepare(self) -> tuple[list[str], dict[str, str]]:
        weed = _which("weed")
        self.version = subprocess.run([weed, "version"], capture_output=True, text=True).stdout.strip().split("\n")[0]
        (self.port, master, master_g, volume, volume_g, filer, filer_g, s3g,
         debug, metrics) = free_ports(10)
        argv = [weed, "server", f"-dir={self.data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                "-master.telemetry=false", "-s3", f"-s3.port={self.port}", f"-s3.port.grpc={s3g}",
                "-s3.port.iceberg=0", "-s3.port.lance=0",
                f"-master.port={master}", f"-master.port.grpc={master_g}",
                f"-volume.port={volume}", f"-volume.port.grpc={volume_g}",
                f"-filer.port={filer}", f"-filer.port.grpc={filer_g}",
                f"-debug.port={debug}", f"-metricsPort={metrics}",
                "-master.volumeSizeLimitMB=1024", "-volume.max=0", "-volume.preStopSeconds=0",
                f"-s3.localSocket={self.workdir / 's3.sock'}",
                f"-filer.localSocket={self.workdir / 'filer.sock'}"]
        return argv, {}

    def ready(self) -> bool:
        # the S3 port opens before the filer/volume are usable: probe with a bucket listing
        if not super().ready():
            return False
        try:
            with urllib.request.urlopen(self.endpoint + "/", timeout=3) as r:
                return r.status == 200
        except urllib.error.HTTPError as exc:
            return exc.code < 500
        except OSError:
            return False


class Nginx(Server):
    """Static files: the ceiling for GET. Objects are written to disk directly."""

    name = "nginx"
    s3 = False
    signed = False

    def prepare(self) -> tuple[list[str], dict[str, str]]:
        nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
        if not nginx:
            raise Unavailable("nginx not installed (run bench/setup.sh)")
        self.version = subprocess.run([nginx, "-v"], capture_output=True, text=True).stderr.strip()
        self.port = free_port()
        www = self.data / "www"
        www.mkdir()
        tmp = self.workdir / "tmp"
        tmp.mkdir()
        user = "user root;" if os.geteuid() == 0 else ""
        conf = f"""
{user}
daemon off;
worker_processes 2;
pid {self.workdir}/nginx.pid;
error_log {self.workdir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  default_type application/octet-stream;
  server {{
    listen 127.0.0.1:{self.port};
    root {www};
    location / {{ autoindex off; }}
  }}
}}
"""
        (self.workdir / "nginx.conf").write_text(conf)
        return [nginx, "-p", str(self.workdir), "-c", str(self.workdir / "nginx.conf"),
                "-e", str(self.workdir / "error.log")], {}

    def path_for(self, bucket: str, key: str) -> Path:
        return self.data / "www" / bucket / key


SERVERS: dict[str, type[Server]] = {
    cls.name: cls for cls in (Pachs3gw, S3Layer, Moto, S3rver, Rclone, JuiceFS, SeaweedFS, Nginx)
}
