import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import SQLite from "better-sqlite3";
import {
  type AbortableOperationOptions,
  type CompiledQuery,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  Kysely,
  PostgresDialect,
  type QueryResult,
  type SqliteDatabase,
  SqliteDialect,
} from "kysely";
import pg from "pg";
import { noteDatabaseError } from "./outage.js";
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
  /**
   * Resolves when the database can be read and written right now, rejects otherwise (locked by
   * another process, read-only, gone). Cheap, and waits at most about `timeoutMs`.
   */
  probe(timeoutMs: number): Promise<void>;
  /**
   * Runs a write that may be lost to a power cut or an OS crash, never to a crash of the
   * gateway: usage rows, written in batches on the request path. On SQLite its commit skips
   * the fsync (`synchronous = NORMAL` for this write only); every other commit — accounts,
   * sessions, keys, revocations — is synced (`FULL`), so a power cut cannot undo it.
   */
  bulk<T>(write: (db: Kysely<AppTables>) => Promise<T>): Promise<T>;
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

/**
 * How long a SQLite write waits for another connection's lock (the admin CLI, a checkpoint)
 * before failing with SQLITE_BUSY. better-sqlite3 waits synchronously, blocking the whole
 * event loop, so this stays short: real writers hold the lock for milliseconds, and a lock held
 * longer is an outage that the caller answers with 503 (and usage rows are spooled).
 */
export const SQLITE_BUSY_TIMEOUT_MS = 1000;

/**
 * Every failed query or connection attempt goes through `noteDatabaseError` first, so that a
 * database outage is seen even where a library (better-auth) catches the error itself.
 */
function tapErrors(inner: Dialect): Dialect {
  const tapped = new WeakSet<DatabaseConnection>();
  const tap = (conn: DatabaseConnection) => {
    if (tapped.has(conn)) return conn;
    tapped.add(conn);
    const { executeQuery, streamQuery } = conn;
    // Patched in place (as Kysely's own query logging does): the driver gets its own
    // connection object back on release.
    conn.executeQuery = <R>(query: CompiledQuery, options?: AbortableOperationOptions) =>
      executeQuery.call(conn, query, options).catch((err: unknown) => {
        noteDatabaseError(err);
        throw err;
      }) as Promise<QueryResult<R>>;
    conn.streamQuery = async function* <R>(
      query: CompiledQuery,
      chunkSize: number,
      options?: AbortableOperationOptions,
    ): AsyncIterableIterator<QueryResult<R>> {
      try {
        yield* streamQuery.call(conn, query, chunkSize, options) as AsyncIterableIterator<
          QueryResult<R>
        >;
      } catch (err) {
        noteDatabaseError(err);
        throw err;
      }
    };
    return conn;
  };
  return {
    createAdapter: () => inner.createAdapter(),
    createIntrospector: (db) => inner.createIntrospector(db),
    createQueryCompiler: () => inner.createQueryCompiler(),
    createDriver(): Driver {
      const d = inner.createDriver();
      // Every method forwarded, bound: drivers keep their state in private fields.
      const forwarded: Driver = {
        init: (o) => d.init(o),
        async acquireConnection(options) {
          try {
            return tap(await d.acquireConnection(options));
          } catch (err) {
            noteDatabaseError(err);
            throw err;
          }
        },
        beginTransaction: (c, settings) => d.beginTransaction(c, settings),
        commitTransaction: (c) => d.commitTransaction(c),
        rollbackTransaction: (c) => d.rollbackTransaction(c),
        releaseConnection: (c, o) => d.releaseConnection(c, o),
        destroy: (o) => d.destroy(o),
      };
      if (d.savepoint) forwarded.savepoint = d.savepoint.bind(d);
      if (d.rollbackToSavepoint) forwarded.rollbackToSavepoint = d.rollbackToSavepoint.bind(d);
      if (d.releaseSavepoint) forwarded.releaseSavepoint = d.releaseSavepoint.bind(d);
      return forwarded;
    },
  };
}

/** The part of Database that does not depend on the engine. */
function wrap(
  kysely: Kysely<AppTables>,
  dialect: DialectName,
  probe: Database["probe"],
  bulk: Database["bulk"] = (write) => write(kysely),
): Database {
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
    probe,
    bulk,
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
  // Every commit is synced (FULL), so that a power cut cannot undo a revocation. Usage-row
  // batches are the exception (`bulk`): better-sqlite3 runs on the event loop, and their fsync
  // stalled every request for 0.7 ms (p50) to 7 ms (p99) per batch on this machine's disk.
  sqlite.pragma("synchronous = FULL");
  sqlite.pragma("foreign_keys = ON");
  sqlite.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
  const dialect = tapErrors(new SqliteDialect({ database: withStatementCache(sqlite) }));
  const kysely = new Kysely<AppTables>({ dialect });
  return wrap(
    kysely,
    "sqlite",
    async (timeoutMs) => probeSqlite(sqlite, timeoutMs),
    // Kysely's SQLite driver lends its one connection to one caller at a time, so no other
    // write can commit while the setting is relaxed.
    (write) =>
      kysely.connection().execute(async (db) => {
        sqlite.pragma("synchronous = NORMAL");
        try {
          return await write(db);
        } finally {
          sqlite.pragma("synchronous = FULL");
        }
      }),
  );
}

/**
 * Takes SQLite's write lock and gives it back at once (BEGIN IMMEDIATE; ROLLBACK), waiting at
 * most `timeoutMs` for it: fails while another process holds the lock, or when the file is
 * read-only or gone. Synchronous, so no query of ours can run in between.
 */
function probeSqlite(sqlite: SQLite.Database, timeoutMs: number): void {
  if (!sqlite.open) throw new Error("The database connection is not open");
  // Our own transaction is open (Kysely holds the connection across awaits): we are writing.
  if (sqlite.inTransaction) return;
  // Waiting blocks the event loop: a short wait tells a lock held by a writer (milliseconds)
  // from an outage well enough.
  sqlite.pragma(`busy_timeout = ${Math.min(250, Math.max(0, Math.floor(timeoutMs)))}`);
  try {
    sqlite.exec("BEGIN IMMEDIATE");
    try {
      // A write that is never committed: a read-only file fails here.
      sqlite.exec("UPDATE gateway_migration SET name = name WHERE 0");
    } finally {
      sqlite.exec("ROLLBACK");
    }
  } finally {
    sqlite.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
  }
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
  const kysely = new Kysely<AppTables>({ dialect: tapErrors(new PostgresDialect({ pool })) });
  return wrap(kysely, "postgres", (timeoutMs) => probePostgres(pool, timeoutMs));
}

/**
 * One round trip on a pooled connection, within `timeoutMs`: fails when the server cannot be
 * reached, refuses connections (restart, too many clients) or accepts only reads (a standby,
 * `default_transaction_read_only`).
 */
async function probePostgres(pool: pg.Pool, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("database probe timed out")), timeoutMs);
  });
  try {
    const query = pool.query<{ ro: string }>(
      "select current_setting('transaction_read_only') as ro",
    );
    // A late answer must not become an unhandled rejection.
    query.catch(() => undefined);
    const { rows } = await Promise.race([query, timeout]);
    if (rows[0]?.ro !== "off") throw new Error("the database accepts only reads");
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Opens PostgreSQL when `url` is set (a pool of up to 10 connections), else the SQLite file
 * at `path` (creating its directory) in WAL mode with foreign keys on. `:memory:` gives a
 * private in-memory SQLite database (tests).
 */
export function openDatabase(target: DatabaseTarget): Database {
  return target.url ? openPostgres(target.url, target.onIdleError) : openSqlite(target.path);
}
