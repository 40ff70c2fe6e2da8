'use strict';
// ltxvfs (Rust `litestream` SQLite VFS) for Node: the path of the loadable extension, and a
// helper that loads it into a better-sqlite3 (or compatible) database.
const fs = require('fs');
const path = require('path');

const FILES = { linux: 'litestream-vfs.so', darwin: 'litestream-vfs.dylib' };

function getLoadablePath() {
  const file = FILES[process.platform];
  if (!file) throw new Error(`litestream-vfs-rs: unsupported platform ${process.platform}`);
  const p = path.join(__dirname, 'lib', file);
  if (!fs.existsSync(p)) throw new Error(`litestream-vfs-rs: extension not found at ${p}`);
  return p;
}

// better-sqlite3: db.loadExtension(path); SQLite derives sqlite3_litestreamvfs_init from the name.
function load(db) {
  db.loadExtension(getLoadablePath());
  return db;
}

module.exports = { getLoadablePath, load };
