import { getMigrations } from "better-auth/db/migration";
import type { Config } from "../config.js";
import { type Database, openDatabase } from "../db/database.js";
import { secureSqliteFiles } from "../db/files.js";
import { migrateApp } from "../db/migrations.js";
import { type Auth, type AuthLog, createAuth } from "./auth.js";
import type { LoginThrottle } from "./throttle.js";

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
