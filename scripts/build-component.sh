#!/usr/bin/env bash
# Build the ltxvfs WebAssembly component (wasm32-wasip2, profile `component`: opt-level "s",
# LTO, stripped) and copy it to target/wasm32-wasip2/component/ltxvfs.wasm, where ltxvfs-host
# looks for it. Needs: clang, Debian's wasi-libc headers, `rustup target add wasm32-wasip2`
# (scripts/setup.sh installs them).
#   bash scripts/build-component.sh            # the component (and examples/wasi_conformance.rs)
#   bash scripts/build-component.sh --host     # and the host CLI (cargo build --release -p ltxvfs-host)
set -euo pipefail
cd "$(dirname "$0")/.."

# The bundled SQLite is C: clang compiles it against Debian's wasi-libc headers.
export CFLAGS_wasm32_wasip2="${CFLAGS_wasm32_wasip2:--isystem /usr/include/wasm32-wasi}"

cargo build --profile component --target wasm32-wasip2 --lib
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
src="$TARGET_DIR/wasm32-wasip2/component/ltxvfs.wasm"
[ -f "$src" ] || { echo "build-component: $src missing" >&2; exit 1; }
echo "build-component: $src ($(stat -c %s "$src") bytes)"
# The storage conformance checks as a WASI command (ext/tests/conformance.rs, s3_component_*).
cargo build --profile component --target wasm32-wasip2 --example wasi_conformance

if [ "${1:-}" = "--host" ]; then
  cargo build --release -p ltxvfs-host
  echo "build-component: $TARGET_DIR/release/ltxvfs-host"
fi
