import type { FastifyPluginAsync } from "fastify";
import fp from "fastify-plugin";
import type { Auth } from "../auth/auth.js";
import type { Config } from "../config.js";
import type { Database } from "../db/database.js";
import { setupDatabase } from "../db/setup.js";

declare module "fastify" {
  interface FastifyInstance {
    db: Database;
    auth: Auth;
  }
}

export interface DatabasePluginOptions {
  config: Config;
}

/** Decorates the app with the migrated database and the better-auth instance. */
const databasePlugin: FastifyPluginAsync<DatabasePluginOptions> = async (app, { config }) => {
  const { db, auth } = await setupDatabase(config, app.log);
  app.addHook("onClose", async () => {
    await db.close();
  });
  app.decorate("db", db);
  app.decorate("auth", auth);
};

export default fp(databasePlugin, { name: "database", fastify: "5.x" });
