import type { FastifyPluginAsync } from "fastify";
import fp from "fastify-plugin";
import type { Auth } from "../auth/auth.js";
import { setupDatabase } from "../auth/setup.js";
import { LoginThrottle, RedisThrottleStore } from "../auth/throttle.js";
import type { Config } from "../config.js";
import type { Database } from "../db/database.js";

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
 * Decorates the app with the migrated database and the better-auth instance, whose sign-in
 * throttle keeps its counters in Redis when REDIS_URL is set (shared by every gateway).
 */
const databasePlugin: FastifyPluginAsync<DatabasePluginOptions> = async (app, { config }) => {
  const throttle = new LoginThrottle(app.redis ? { store: new RedisThrottleStore(app.redis) } : {});
  const { db, auth } = await setupDatabase(config, app.log, { throttle });
  app.addHook("onClose", async () => {
    await db.close();
  });
  app.decorate("db", db);
  app.decorate("auth", auth);
};

export default fp(databasePlugin, { name: "database", dependencies: ["redis"], fastify: "5.x" });
