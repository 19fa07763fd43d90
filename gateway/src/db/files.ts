import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from "node:fs";
import { dirname, resolve } from "node:path";

/**
 * Makes the SQLite database private to the gateway's user before SQLite opens it: session
 * tokens and password hashes live there. A missing directory is created 0700; the database
 * file is created (or tightened to) 0600, and so are its `-wal`, `-shm` and `-journal`
 * files when present. SQLite creates those with the database file's own mode, so they stay
 * private too. An existing directory keeps its mode (it may be shared, e.g. /tmp).
 */
export function secureSqliteFiles(path: string): void {
  if (path === ":memory:" || path === "" || path.startsWith("file:")) return;
  const file = resolve(path);
  const dir = dirname(file);
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (!existsSync(file)) closeSync(openSync(file, "a", 0o600));
  for (const f of [file, `${file}-wal`, `${file}-shm`, `${file}-journal`]) {
    if (existsSync(f)) chmodSync(f, 0o600);
  }
}
