/** Absolute path of the loadable extension (litestream-vfs.so / .dylib). */
export function getLoadablePath(): string;
/** Load the extension into a better-sqlite3 (or compatible) database; returns `db`. */
export function load<T extends { loadExtension(path: string): unknown }>(db: T): T;
