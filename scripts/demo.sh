#!/usr/bin/env bash
# Demo: replicate a live SQLite database with the real `litestream replicate` into a file://
# replica, then query the replica in place (no restore) through our `litestream` VFS with the
# sqlite3 CLI, the way Litestream's docs use litestream-vfs.
#   bash scripts/setup.sh && bash scripts/demo.sh
#   LTXVFS_EXT=<path to an extension .so>  use another build (e.g. the Go one) instead of ours
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
PY="${PYTHON:-python3}"
SCRIPTS="$("$PY" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
LITESTREAM="$SCRIPTS/litestream"
[ -x "$LITESTREAM" ] || LITESTREAM="$(command -v litestream)" || {
  echo "litestream not found: run bash scripts/setup.sh" >&2; exit 1; }

EXT="${LTXVFS_EXT:-$ROOT/target/release/liblitestream_vfs.so}"
if [ -z "${LTXVFS_EXT:-}" ] && [ ! -f "$EXT" ]; then
  echo "==> building the extension (cargo build --release -p litestream-vfs)"
  cargo build --release -p litestream-vfs
fi
[ -f "$EXT" ] || { echo "extension not found: $EXT" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/ltxvfs-demo.XXXXXX")"
LS_PID=""
cleanup() {
  if [ -n "$LS_PID" ] && kill -0 "$LS_PID" 2>/dev/null; then
    kill -TERM "$LS_PID" 2>/dev/null || true
    wait "$LS_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

DB="$WORK/prod.db"
REPLICA="$WORK/replica"
SOCK="$WORK/litestream.sock"
echo "==> sample database $DB (WAL mode)"
sqlite3 "$DB" >/dev/null <<'SQL'
PRAGMA journal_mode=WAL;
CREATE TABLE books(id INTEGER PRIMARY KEY, title TEXT NOT NULL, author TEXT, year INTEGER);
CREATE INDEX books_author ON books(author);
INSERT INTO books(title, author, year) VALUES
  ('The C Programming Language', 'Kernighan & Ritchie', 1978),
  ('Structure and Interpretation of Computer Programs', 'Abelson & Sussman', 1985),
  ('The Art of Computer Programming', 'Knuth', 1968),
  ('Designing Data-Intensive Applications', 'Kleppmann', 2017);
SQL

cat >"$WORK/litestream.yml" <<YML
socket:
  enabled: true
  path: $SOCK
dbs:
  - path: $DB
    monitor-interval: 100ms
    replica:
      url: file://$REPLICA
      sync-interval: 100ms
YML

echo "==> litestream replicate -> file://$REPLICA"
# The Go S3 client of litestream refuses to start with AWS_CA_BUNDLE set (not needed for file://
# either); our extension below keeps it.
env -u AWS_CA_BUNDLE "$LITESTREAM" replicate -config "$WORK/litestream.yml" \
  >"$WORK/litestream.log" 2>&1 </dev/null &
LS_PID=$!

# Waits until litestream has read the WAL and the replica holds an L0 file ending at the
# database's current TXID (`litestream sync -wait` through the control socket).
wait_synced() {
  txid=""
  for _ in $(seq 1 300); do
    if ! kill -0 "$LS_PID" 2>/dev/null; then
      echo "litestream exited:" >&2; cat "$WORK/litestream.log" >&2; exit 1
    fi
    if out="$(env -u AWS_CA_BUNDLE "$LITESTREAM" sync -wait -json -timeout 10 -socket "$SOCK" "$DB" 2>/dev/null)"; then
      txid="$(printf '%s' "$out" | "$PY" -c 'import json,sys; j=json.load(sys.stdin); print(j["txid"] if j.get("replica_txid") == j["txid"] else "")')"
      if [ -n "$txid" ] && [ -f "$REPLICA/ltx/0/$(printf '%016x-%016x.ltx' "$txid" "$txid")" ]; then
        return 0
      fi
    fi
    sleep 0.1
  done
  echo "replica did not sync in time" >&2; cat "$WORK/litestream.log" >&2; exit 1
}
wait_synced
printf '    initial snapshot: TXID %016x\n' "$txid"

echo "==> more writes while litestream runs (several transactions)"
for i in 1 2 3; do
  sqlite3 "$DB" "INSERT INTO books(title, author, year) SELECT 'Volume ' || value || ' of batch $i', 'Anonymous', 2000 + value FROM generate_series(1, 100);"
  wait_synced
done
sqlite3 "$DB" "UPDATE books SET year = year + 1 WHERE author = 'Knuth'; DELETE FROM books WHERE title LIKE 'Volume 1_ of batch 2';"

echo "==> waiting until the replica has the database's latest transaction"
wait_synced
printf '    synced: TXID %016x\n' "$txid"
echo "==> stopping litestream"
kill -TERM "$LS_PID"; wait "$LS_PID" 2>/dev/null || true; LS_PID=""
echo "    replica files:"; (cd "$REPLICA" && find ltx -name '*.ltx' | sort | sed 's/^/      /')

# Load it like Litestream's docs do: `.load ./litestream-vfs` (SQLite adds .so and derives the
# entry point sqlite3_litestreamvfs_init from the file name).
cp "$EXT" "$WORK/litestream-vfs.so"
export LITESTREAM_REPLICA_URL="file://$REPLICA"
RUN_ENV=()
case "$EXT" in */site-packages/litestream_vfs/*) RUN_ENV=(-u AWS_CA_BUNDLE);; esac
echo "==> sqlite3 + our litestream VFS, reading $LITESTREAM_REPLICA_URL in place"
cd "$WORK"
env "${RUN_ENV[@]}" sqlite3 -batch -bail <<'SQL'
.load ./litestream-vfs
.open 'file:prod.db?vfs=litestream'
.headers on
.mode box
SELECT id, title, author, year FROM books ORDER BY id LIMIT 5;
SELECT count(*) AS books, min(year) AS first, max(year) AS last FROM books;
.headers off
.mode list
.print
.print PRAGMA litestream_txid:
PRAGMA litestream_txid;
SQL
replica_count="$(env "${RUN_ENV[@]}" sqlite3 -batch -bail -cmd '.load ./litestream-vfs' \
  -cmd ".open 'file:prod.db?vfs=litestream'" ':memory:' 'SELECT count(*) FROM books;' </dev/null)"
primary_count="$(sqlite3 "$DB" 'SELECT count(*) FROM books;')"
if [ "$replica_count" != "$primary_count" ]; then
  echo "MISMATCH: replica has $replica_count books, primary $primary_count" >&2; exit 1
fi
echo "==> replica and primary agree: $primary_count books"
