/** Helpers for tests of a database that is locked or stopped. */
import SQLite from "better-sqlite3";

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it is true (throws after `ms`). */
export async function eventually(check: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("condition not reached in time");
    await sleep(100);
  }
}

/**
 * Another connection takes SQLite's write lock and keeps it (BEGIN EXCLUSIVE), as another
 * process would; returns the release.
 */
export function lockSqlite(path: string): () => void {
  const locker = new SQLite(path);
  locker.exec("BEGIN EXCLUSIVE");
  return () => {
    locker.exec("ROLLBACK");
    locker.close();
  };
}
