#!/usr/bin/env bash
# Builds the Python package as a platform wheel: dist/litestream_vfs_rs-<version>-py3-none-<platform>.whl
# (import name `litestream_vfs`, the same API as Litestream's package). Honours CARGO_TARGET_DIR.
#   bash scripts/build-python-wheel.sh && pip install dist/litestream_vfs_rs-*.whl
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/dist.sh >/dev/null
lib=dist/litestream-vfs.so; [ "$(uname -s)" = Darwin ] && lib=dist/litestream-vfs.dylib
version="$(sed -n 's/^version = "\(.*\)"/\1/p' ext/Cargo.toml | head -1)"
"${PYTHON:-python3}" python/build_wheel.py "$lib" "$version" dist
