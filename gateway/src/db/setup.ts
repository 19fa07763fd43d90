import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { getMigrations } from "better-auth/db/migration";
import { type Auth, type AuthLog, createAuth } from "../auth/auth.js";
import type { LoginThrottle } from "../auth/throttle.js";
import type { Config } from "../config.js";
import { type Database, openDatabase } from "./database.js";
import { migrateApp } from "./migrations.js";

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

export interface SetupOptions {
  /** The sign-in throttle (default: one in process memory); see createAuth. */
  throttle?: LoginThrottle;
}

/** Where setup reports: better-auth's levels, and `info` for the migrations it applied. */
export type SetupLog = AuthLog & { info?: (obj: Record<string, unknown>, msg: string) => void };

/**
 * Opens the database, creates the better-auth instance on it, and runs every
 * migration (better-auth's tables first, then the gateway's). Shared by the server
 * and the admin command line. What a migration changed is logged at info level; a schema that
 * still differs from what better-auth writes afterwards is an error that stops the start
 * (better-auth's own check, which would report the empty database of every first start as an
 * error-level "schema mismatch" before the migrations ran, is off: see auth.ts).
 */
export async function setupDatabase(
  config: Config,
  log: SetupLog,
  options: SetupOptions = {},
): Promise<{ db: Database; auth: Auth }> {
  if (!config.databaseUrl) secureSqliteFiles(config.databasePath);
  const db = openDatabase({
    url: config.databaseUrl,
    path: config.databasePath,
    onIdleError: (err) => log.error({ err }, "database connection error"),
  });
  try {
    const auth = createAuth({
      config,
      db,
      log,
      ...(options.throttle ? { throttle: options.throttle } : {}),
    });
    const pending = await getMigrations(auth.options);
    await pending.runMigrations();
    const applied = await migrateApp(db.kysely, db.dialect);
    const created = pending.toBeCreated.map((t) => t.table);
    const added = pending.toBeAdded.flatMap((t) =>
      Object.keys(t.fields).map((f) => `${t.table}.${f}`),
    );
    if (created.length || added.length || applied.length) {
      log.info?.({ created, added, gatewayMigrations: applied }, "database migrated");
    }
    const left = await getMigrations(auth.options);
    if (left.toBeCreated.length || left.toBeAdded.length) {
      const what = [
        ...left.toBeCreated.map((t) => t.table),
        ...left.toBeAdded.flatMap((t) => Object.keys(t.fields).map((f) => `${t.table}.${f}`)),
      ];
      throw new Error(`the database schema still lacks ${what.join(", ")} after migrating`);
    }
    return { db, auth };
  } catch (err) {
    await db.close();
    throw err;
  }
}
