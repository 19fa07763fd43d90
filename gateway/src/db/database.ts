import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import SQLite from "better-sqlite3";
import { Kysely, SqliteDialect } from "kysely";
import type { AppTables } from "./schema.js";

export interface Database {
  kysely: Kysely<AppTables>;
  /** The raw connection (better-auth shares the Kysely instance, not this). */
  sqlite: SQLite.Database;
  close(): Promise<void>;
}

/**
 * Opens the SQLite database at `path` (creating its directory), in WAL mode with
 * foreign keys on. `:memory:` gives a private in-memory database (tests).
 */
export function openDatabase(path: string): Database {
  if (path !== ":memory:") mkdirSync(dirname(resolve(path)), { recursive: true });
  const sqlite = new SQLite(path);
  sqlite.pragma("journal_mode = WAL");
  sqlite.pragma("foreign_keys = ON");
  sqlite.pragma("busy_timeout = 5000");
  const kysely = new Kysely<AppTables>({ dialect: new SqliteDialect({ database: sqlite }) });
  return {
    kysely,
    sqlite,
    async close() {
      await kysely.destroy();
    },
  };
}
