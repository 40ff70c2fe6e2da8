#!/usr/bin/env bash
# THE test command: formatting, lints, Rust tests, the release extension (and the WebAssembly
# component + host when present), then the integration suite (real sqlite3/python hosts, real
# litestream, SeaweedFS). Extra arguments go to pytest, e.g. `bash scripts/test.sh -k vectors`.
# Exits non-zero if any step fails (pytest exit code 5, "no tests collected", is a failure).
#   LTXVFS_EXT=<path>  run the integration suite against another build (e.g. the Go extension).
set -uo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
failed=()
step() {
  local name="$1"; shift
  echo "==> $name"
  local t0=$SECONDS
  if "$@"; then
    echo "==> $name: ok ($((SECONDS - t0))s)"
  else
    local rc=$?
    echo "==> $name: FAILED (exit $rc, $((SECONDS - t0))s)"
    failed+=("$name")
    return "$rc"
  fi
}

step "cargo fmt" cargo fmt --all --check
step "cargo clippy" cargo clippy --workspace --all-targets -- -D warnings
step "cargo clippy (Rust API)" cargo clippy -p litestream-vfs --features embed --all-targets -- -D warnings
step "cargo clippy (component)" env CFLAGS_wasm32_wasip2="-isystem /usr/include/wasm32-wasi" \
  cargo clippy --target wasm32-wasip2 --lib -- -D warnings
# The host's tests run in release: it shares the release build of wasmtime with the binary the
# integration tests use, instead of a second, debug build of wasmtime.
step "cargo test" cargo test --workspace --exclude ltxvfs-host
# The Rust API (feature `embed`): its tests and the in-process example on the sample replica.
step "cargo test (Rust API)" cargo test -p litestream-vfs --features embed --tests
step "cargo run --example in_process" bash -c \
  'cargo run -q -p litestream-vfs --features embed --example in_process | grep -qx "rows=305 txid=0000000000000008 version=.*"'
step "cargo test (host)" cargo test --release -p ltxvfs-host
# Fuzz targets (fuzz/, cargo-fuzz on nightly): a short run of each, seeded from the fixtures.
step "cargo fuzz (20 s per target)" bash scripts/fuzz.sh "${LTXVFS_FUZZ_SECONDS:-20}"
built=1
step "cargo build (release extension)" cargo build --release -p litestream-vfs || built=0
# The WebAssembly component and its wasmtime host (tests/integration/test_component.py), when
# the tree has them.
if [ -f scripts/build-component.sh ]; then
  if step "component + host (scripts/build-component.sh --host)" bash scripts/build-component.sh --host; then
    # The storage conformance checks against the component's own S3 storage, in wasmtime.
    step "cargo test (component storage conformance)" \
      cargo test -p litestream-vfs --test conformance -- --ignored s3_component
  else
    built=0
  fi
fi
if [ "$built" = 1 ]; then
  step "pytest tests/integration" "$PY" -m pytest tests/integration "$@"
else
  echo "==> pytest tests/integration: not run (a build failed)"
  failed+=("pytest (not run)")
fi

if [ "${#failed[@]}" -gt 0 ]; then
  echo "FAILED steps: ${failed[*]}"
  exit 1
fi
echo "all steps passed"
