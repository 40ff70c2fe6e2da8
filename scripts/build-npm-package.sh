#!/usr/bin/env bash
# Builds the npm package: dist/litestream-vfs-rs-<version>.tgz (getLoadablePath(), load(db)).
#   bash scripts/build-npm-package.sh && npm install /path/to/dist/litestream-vfs-rs-*.tgz
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/dist.sh >/dev/null
version="$(sed -n 's/^version = "\(.*\)"/\1/p' ext/Cargo.toml | head -1)"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
cp npm/index.js npm/index.d.ts npm/README.md "$stage/"
cp npm/install.js "$stage/"
sed "s/\"version\": \"[^\"]*\"/\"version\": \"$version\"/" npm/package.json > "$stage/package.json"
mkdir "$stage/lib"
cp dist/litestream-vfs.* "$stage/lib/" 2>/dev/null || true
rm -f "$stage"/lib/*.tar.gz* 
(cd "$stage" && npm pack --silent --pack-destination "$OLDPWD/dist" >/dev/null)
echo "dist/litestream-vfs-rs-$version.tgz"
