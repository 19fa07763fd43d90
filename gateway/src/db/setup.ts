import { getMigrations } from "better-auth/db/migration";
import { type Auth, type AuthLog, createAuth } from "../auth/auth.js";
import type { Config } from "../config.js";
import { type Database, openDatabase } from "./database.js";
import { migrateApp } from "./migrations.js";

/**
 * Opens the database, creates the better-auth instance on it, and runs every
 * migration (better-auth's tables first, then the gateway's). Shared by the server
 * and the admin command line.
 */
export async function setupDatabase(
  config: Config,
  log: AuthLog,
): Promise<{ db: Database; auth: Auth }> {
  const db = openDatabase({
    url: config.databaseUrl,
    path: config.databasePath,
    onIdleError: (err) => log.error({ err }, "database connection error"),
  });
  try {
    const auth = createAuth({ config, db, log });
    const { runMigrations } = await getMigrations(auth.options);
    await runMigrations();
    await migrateApp(db.kysely, db.dialect);
    return { db, auth };
  } catch (err) {
    await db.close();
    throw err;
  }
}
