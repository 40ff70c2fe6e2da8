'use strict';
// `npm install <checkout>/npm` (one command): when the package has no prebuilt extension in lib/
// (a checkout rather than the packed tarball), build it with cargo in the checkout and copy it
// into lib/. The tarball from scripts/build-npm-package.sh already has lib/ and skips this.
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');

const FILES = { linux: ['liblitestream_vfs.so', 'litestream-vfs.so'], darwin: ['liblitestream_vfs.dylib', 'litestream-vfs.dylib'] };
const names = FILES[process.platform];
if (!names) {
  console.error(`litestream-vfs-rs: unsupported platform ${process.platform}`);
  process.exit(1);
}
const lib = path.join(__dirname, 'lib', names[1]);
if (fs.existsSync(lib)) process.exit(0);
const repo = path.resolve(__dirname, '..');
if (!fs.existsSync(path.join(repo, 'ext', 'Cargo.toml'))) {
  console.error(`litestream-vfs-rs: no prebuilt extension in ${path.dirname(lib)} and ${repo} is not the ltxvfs repository`);
  process.exit(1);
}
try {
  execFileSync('cargo', ['build', '--release', '-p', 'litestream-vfs'], { cwd: repo, stdio: ['ignore', 2, 2] });
} catch (e) {
  console.error(`litestream-vfs-rs: cargo build failed (${e.code === 'ENOENT' ? 'cargo not found: https://rustup.rs' : e.message})`);
  process.exit(1);
}
const target = process.env.CARGO_TARGET_DIR ? path.resolve(repo, process.env.CARGO_TARGET_DIR) : path.join(repo, 'target');
fs.mkdirSync(path.dirname(lib), { recursive: true });
fs.copyFileSync(path.join(target, 'release', names[0]), lib);
