import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import SQLite from "better-sqlite3";
import { Kysely, PostgresDialect, type SqliteDatabase, SqliteDialect } from "kysely";
import pg from "pg";
import type { AppTables } from "./schema.js";

/** Which engine is behind the Kysely instance; the few dialect differences branch on it. */
export type DialectName = "sqlite" | "postgres";

export interface Database {
  /** Every query goes through this (better-auth shares it too). */
  kysely: Kysely<AppTables>;
  dialect: DialectName;
  /**
   * Tracks a write the caller does not wait for (a usage record on the request's hot path),
   * so that `drain()` and `close()` wait for it.
   */
  background<T>(write: Promise<T>): Promise<T>;
  /** Resolves once every write tracked so far has settled (read-your-writes for readers). */
  drain(): Promise<void>;
  /** Waits for tracked writes, then closes the connection (pool); safe to call twice. */
  close(): Promise<void>;
}

export interface DatabaseTarget {
  /** A postgres:// URL; when set, `path` is ignored. */
  url?: string | undefined;
  /** SQLite file (or `:memory:`). */
  path: string;
  /** Errors of idle pooled PostgreSQL connections (server restart, network); logged, not thrown. */
  onIdleError?: (err: Error) => void;
}

// pg returns int8 (COUNT, bigint columns such as epoch-ms timestamps) as strings, because
// not every int8 fits a JS number. Ours are epoch milliseconds and counters, far below
// 2^53, so they are parsed as numbers; NUMERIC (SUM of int8) stays a string: wrap it in
// Number() where it is read.
const INT8_OID = 20;
const pgTypes = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === INT8_OID && format !== "binary"
      ? (value: string) => Number(value)
      : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/** The part of Database that does not depend on the engine. */
function wrap(kysely: Kysely<AppTables>, dialect: DialectName): Database {
  const pending = new Set<Promise<unknown>>();
  let closed = false;
  const drain = async () => {
    await Promise.allSettled([...pending]);
  };
  return {
    kysely,
    dialect,
    background(write) {
      pending.add(write);
      const forget = () => pending.delete(write);
      write.then(forget, forget);
      return write;
    },
    drain,
    async close() {
      // pg's Pool.end() throws when called twice; close() may run after a failed start too.
      if (closed) return;
      closed = true;
      await drain();
      await kysely.destroy();
    },
  };
}

/**
 * better-sqlite3 behind Kysely, with its prepared statements kept by SQL text: Kysely
 * prepares a statement for every query, and the hot path's few queries (the usage insert,
 * better-auth's lookups) are the same each time. A statement still iterating (a streamed
 * query) is never handed out twice; at most `max` are kept, oldest dropped first.
 */
export function withStatementCache(db: SQLite.Database, max = 200): SqliteDatabase {
  const statements = new Map<string, SQLite.Statement>();
  return {
    close: () => db.close(),
    prepare(sql) {
      const known = statements.get(sql);
      if (known && !known.busy) return known;
      const stmt = db.prepare(sql);
      if (!known) {
        if (statements.size >= max) {
          const oldest = statements.keys().next();
          if (!oldest.done) statements.delete(oldest.value);
        }
        statements.set(sql, stmt);
      }
      return stmt;
    },
  };
}

function openSqlite(path: string): Database {
  if (path !== ":memory:") mkdirSync(dirname(resolve(path)), { recursive: true });
  const sqlite = new SQLite(path);
  sqlite.pragma("journal_mode = WAL");
  sqlite.pragma("foreign_keys = ON");
  sqlite.pragma("busy_timeout = 5000");
  return wrap(
    new Kysely<AppTables>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite) }) }),
    "sqlite",
  );
}

function openPostgres(url: string, onIdleError?: (err: Error) => void): Database {
  const pool = new pg.Pool({
    connectionString: url,
    max: 10,
    // Fail a query (and /health/ready) in seconds when the server is unreachable instead of
    // waiting for the operating system's TCP timeout.
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    types: pgTypes,
  });
  // Without a listener an idle client's error (e.g. the server restarting) crashes the process.
  pool.on("error", (err) => onIdleError?.(err));
  return wrap(new Kysely<AppTables>({ dialect: new PostgresDialect({ pool }) }), "postgres");
}

/**
 * Opens PostgreSQL when `url` is set (a pool of up to 10 connections), else the SQLite file
 * at `path` (creating its directory) in WAL mode with foreign keys on. `:memory:` gives a
 * private in-memory SQLite database (tests).
 */
export function openDatabase(target: DatabaseTarget): Database {
  return target.url ? openPostgres(target.url, target.onIdleError) : openSqlite(target.path);
}
