#!/usr/bin/env bash
# Read benchmark, end to end: builds the release extension, then runs bench/run.py, which starts
# SeaweedFS, replicates two databases with the real `litestream replicate`, puts a counting proxy
# with a fixed per-request delay (10 ms) in front of the store, and runs every scenario in a fresh
# process for ltxvfs, the Go `litestream-vfs` and plain SQLite on a restored local copy.
#
#   bash scripts/bench.sh                 # full run (~28 MB database); rewrites the results
#                                         # section of BENCHMARKS.md, raw data in bench/out/
#   bash scripts/bench.sh --quick         # ~7 MB database, fewer repeats; BENCHMARKS.md untouched
#   bash scripts/bench.sh --delay-ms 20 --only open,point,scan
#   bash scripts/bench.sh --idle-poll     # idle connection, 30 s: requests and LISTs vs Go
#   bash scripts/bench.sh --large         # ~480 MB replica (~10 min): scan vs restore-first,
#                                         # random cold lookups and open vs Go (bench/large.py)
#   bash scripts/bench.sh --backends      # per backend (file, s3, gs, abs, webdav, sftp, nats; ~4 min):
#                                         # open, cold point lookup, cold scan vs Go on the same
#                                         # server (bench/backends.py; raw data bench/out/)
=======
#   bash scripts/bench.sh --scale         # open time and index memory at 10 MB/500 MB/2 GB, open
#                                         # time at 10/250/2000 L0 files, 1/8/32 reader threads,
#                                         # each vs Go (bench/scale.py, ~30 min)
#
#   LTXVFS_EXT=<path>  benchmark that build of the extension instead of target/release (no build)
#   BENCH_MD=<path>    write the results section there instead ("" = don't write)
# Needs what scripts/setup.sh installs (litestream, weed, boto3, the Go extension, Debian's
# /usr/bin/python3 whose sqlite3 module can load extensions; for --backends also azurite,
# fake-gcs-server, rclone and sshd, as the backend tests).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"

"$PY" -c 'import boto3, litestream_vfs' 2>/dev/null || {
  echo "bench: boto3 / litestream_vfs missing for $PY: run bash scripts/setup.sh" >&2; exit 1; }
/usr/bin/python3 -c 'import sqlite3; sqlite3.connect(":memory:").enable_load_extension(True)' || {
  echo "bench: /usr/bin/python3 cannot load SQLite extensions: run bash scripts/setup.sh" >&2; exit 1; }

if [ -n "${LTXVFS_EXT:-}" ]; then
  EXT="$LTXVFS_EXT"
else
  echo "==> cargo build --release -p litestream-vfs" >&2
  cargo build --release -p litestream-vfs >&2
  EXT="target/release/liblitestream_vfs.so"
fi

quick=0
for a in "$@"; do [ "$a" = "--quick" ] && quick=1; done
if [ "${BENCH_MD+set}" = set ]; then MD="$BENCH_MD"
elif [ "$quick" = 1 ]; then MD=""
else MD="BENCHMARKS.md"; fi

# Idle polling only (issue 12): requests and LISTs of one idle connection in 30 s, ltxvfs vs Go.
if [ "${1:-}" = "--idle-poll" ]; then
  shift
  exec "$PY" bench/idle_poll.py --ours "$EXT" ${MD:+--md "$MD"} "$@"
fi

# Large replica (issue 12): built, replicated and read in one run (bench/large.py).
if [ "${1:-}" = "--large" ]; then
  shift
  exec "$PY" bench/large.py --ours "$EXT" ${MD:+--md "$MD"} "$@"
fi

# Every backend (issue 8): its real server, the real litestream, ltxvfs vs Go (bench/backends.py).
if [ "${1:-}" = "--backends" ]; then
  shift
  mkdir -p bench/out
  BENCH_COMMAND="bash scripts/bench.sh --backends${*:+ $*}" exec "$PY" bench/backends.py \
    --ours "$EXT" --json bench/out/backends.json ${MD:+--md "$MD"} "$@"
fi

# Scale (issue 12): how open time, index memory and thread throughput grow (bench/scale.py).
if [ "${1:-}" = "--scale" ]; then
  shift
  exec "$PY" bench/scale.py --ours "$EXT" ${MD:+--md "$MD"} "$@"
fi

mkdir -p bench/out
args=(--ours "$EXT" --json bench/out/results.json)
[ -n "$MD" ] && args+=(--md "$MD")
BENCH_COMMAND="bash scripts/bench.sh${*:+ $*}" exec "$PY" bench/run.py "${args[@]}" "$@"
