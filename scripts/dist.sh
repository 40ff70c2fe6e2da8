#!/usr/bin/env bash
# Builds the release extension and lays it out the way the Litestream docs load it:
#   dist/litestream-vfs.so          (.dylib on macOS) — `.load ./dist/litestream-vfs sqlite3_litestreamvfs_init`
#   dist/litestream-vfs-<version>-<os>-<arch>.tar.gz  and its .sha256 (release tarball)
# Usage: bash scripts/dist.sh          (honours CARGO_TARGET_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -p litestream-vfs
TARGET="${CARGO_TARGET_DIR:-target}"
case "$(uname -s)" in
  Darwin) os=darwin; ext=dylib ;;
  Linux) os=linux; ext=so ;;
  *) echo "dist: unsupported platform $(uname -s)" >&2; exit 1 ;;
esac
case "$(uname -m)" in
  x86_64|amd64) arch=amd64 ;;
  aarch64|arm64) arch=arm64 ;;
  *) arch="$(uname -m)" ;;
esac
built="$TARGET/release/liblitestream_vfs.$ext"
version="$(cargo metadata --no-deps --format-version 1 \
  | python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "litestream-vfs"))')"

mkdir -p dist
cp "$built" "dist/litestream-vfs.$ext"
name="litestream-vfs-$version-$os-$arch"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir "$stage/$name"
cp "dist/litestream-vfs.$ext" README.md "$stage/$name/"
tar -C "$stage" -czf "dist/$name.tar.gz" "$name"
(cd dist && sha256sum "$name.tar.gz" > "$name.tar.gz.sha256" 2>/dev/null \
  || shasum -a 256 "$name.tar.gz" > "$name.tar.gz.sha256")
echo "dist: dist/litestream-vfs.$ext, dist/$name.tar.gz (+ .sha256)"
