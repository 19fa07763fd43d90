import { AsyncLocalStorage } from "node:async_hooks";
import { databaseUnavailable } from "../errors.js";

/**
 * Telling "the database cannot be used right now" (locked, read-only, full, gone) apart from
 * every other database error: the first is the operator's problem and temporary, so callers
 * get 503 with Retry-After and usage rows are kept for later, never a 500, 401 or 422.
 */

// SQLite result codes (better-sqlite3 puts the extended name in `code`, e.g. SQLITE_BUSY_SNAPSHOT,
// SQLITE_IOERR_WRITE, SQLITE_READONLY_DBMOVED): every extension of these is an outage.
const SQLITE_OUTAGE = /^SQLITE_(BUSY|LOCKED|READONLY|FULL|IOERR|CANTOPEN|PROTOCOL|NOLFS)(_|$)/;

// PostgreSQL SQLSTATEs: 08 connection exception, 53 insufficient resources (disk full, out of
// memory, too many connections), 57P0x shutdown/restart, 25006 read-only transaction (a
// standby or default_transaction_read_only), 55P03 lock not available, 58030 I/O error.
const PG_OUTAGE = /^(08...|53...|57P0[1-4]|25006|55P03|58030)$/;

// Network errors on the way to PostgreSQL.
const NET_OUTAGE = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ECONNABORTED",
]);

// Errors without a code: node-postgres' lost connections and pool timeouts, better-sqlite3 on a
// closed handle, Kysely after destroy().
const MESSAGE_OUTAGE =
  /Connection terminated|timeout exceeded when trying to connect|connection error and is not queryable|Cannot use a pool after calling end|database connection is not open|driver has already been destroyed/i;

/** Errors thrown by our database queries (see `noteDatabaseError`). */
const fromDatabase = new WeakSet<object>();

/**
 * SQLite and PostgreSQL codes say "database" by themselves; network errors and the messages
 * only when the error came from a database query (an llm-server refusing a connection is not a
 * database outage).
 */
function isOutageItself(err: object, fromDb: boolean): boolean {
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string") {
    if (SQLITE_OUTAGE.test(code) || PG_OUTAGE.test(code)) return true;
    if (fromDb && NET_OUTAGE.has(code)) return true;
  }
  const message = (err as { message?: unknown }).message;
  return fromDb && typeof message === "string" && MESSAGE_OUTAGE.test(message);
}

/**
 * True when `err` (or an error it wraps: `cause`, an AggregateError's `errors`) says the
 * database is busy, locked, read-only, full, unreachable or shutting down.
 */
export function isDatabaseUnavailable(err: unknown, depth = 0, fromDb = false): boolean {
  if (typeof err !== "object" || err === null || depth > 5) return false;
  const db = fromDb || fromDatabase.has(err);
  if (isOutageItself(err, db)) return true;
  const { cause, errors } = err as { cause?: unknown; errors?: unknown };
  if (isDatabaseUnavailable(cause, depth + 1, db)) return true;
  return Array.isArray(errors) && errors.some((e) => isDatabaseUnavailable(e, depth + 1, db));
}

/** The database outages seen by queries of the current async context (see `watchOutages`). */
const seen = new AsyncLocalStorage<{ outage: unknown }>();

/**
 * Called for every failed query or connection attempt (database.ts): remembers an outage for
 * the `watchOutages` call it happens under, if any.
 */
export function noteDatabaseError(err: unknown): void {
  if (typeof err === "object" && err !== null) fromDatabase.add(err);
  const scope = seen.getStore();
  if (scope && scope.outage === undefined && isDatabaseUnavailable(err)) scope.outage = err;
}

/**
 * Runs `fn` and tells whether a query it made failed because the database was unavailable,
 * even when something in between caught that error (better-auth answers such a failure itself
 * with 500 or 422, and its API-key check with "invalid"). `outage` is that first error.
 */
export async function watchOutages<T>(
  fn: () => Promise<T>,
): Promise<{ result: T; outage: unknown } | { error: unknown; outage: unknown }> {
  const scope = { outage: undefined as unknown };
  try {
    const result = await seen.run(scope, fn);
    return { result, outage: scope.outage };
  } catch (error) {
    return { error, outage: scope.outage ?? (isDatabaseUnavailable(error) ? error : undefined) };
  }
}

/**
 * Runs `fn`; when it failed because the database was unavailable — it threw, or it returned
 * a result `failed` calls a failure (better-auth's 500/422 answer, an API key found "invalid")
 * while one of its queries hit an outage — throws `databaseUnavailable()` (503) instead.
 */
export async function unavailableAs503<T>(
  fn: () => Promise<T>,
  failed: (result: T) => boolean,
): Promise<T> {
  const watched = await watchOutages(fn);
  if ("error" in watched) {
    throw watched.outage === undefined ? watched.error : databaseUnavailable(watched.outage);
  }
  if (watched.outage !== undefined && failed(watched.result)) {
    throw databaseUnavailable(watched.outage);
  }
  return watched.result;
}

/** For `unavailableAs503`: no result (no caller found). */
export const isNull = (result: unknown) => result === null;
/** For `unavailableAs503`: an HTTP answer that is not a success. */
export const isFailure = (response: Response) => response.status >= 400;
