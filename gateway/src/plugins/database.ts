import { getMigrations } from "better-auth/db/migration";
import type { FastifyPluginAsync } from "fastify";
import fp from "fastify-plugin";
import { type Auth, createAuth } from "../auth/auth.js";
import type { Config } from "../config.js";
import { type Database, openDatabase } from "../db/database.js";
import { migrateApp } from "../db/migrations.js";

declare module "fastify" {
  interface FastifyInstance {
    db: Database;
    auth: Auth;
  }
}

export interface DatabasePluginOptions {
  config: Config;
}

/**
 * Opens the database, creates the better-auth instance on it, and runs every
 * migration (better-auth's tables first, then the gateway's) before the app starts.
 */
const databasePlugin: FastifyPluginAsync<DatabasePluginOptions> = async (app, { config }) => {
  const db = openDatabase(config.databasePath);
  app.addHook("onClose", async () => {
    await db.close();
  });
  const auth = createAuth({ config, db: db.kysely, log: app.log });
  const { runMigrations } = await getMigrations(auth.options);
  await runMigrations();
  await migrateApp(db.kysely);
  app.decorate("db", db);
  app.decorate("auth", auth);
};

export default fp(databasePlugin, { name: "database", fastify: "5.x" });
