import type { FastifyPluginAsync } from "fastify";
import fp from "fastify-plugin";
import { Redis } from "ioredis";
import type { Config } from "../config.js";

declare module "fastify" {
  interface FastifyInstance {
    /** The client of REDIS_URL (limit counters, cache, sign-in throttle); null without it. */
    redis: Redis | null;
  }
}

export interface RedisPluginOptions {
  config: Config;
}

/**
 * Connects to REDIS_URL when it is set (before the database plugin: the sign-in throttle
 * built there keeps its counters in Redis too), and disconnects when the app closes.
 */
const redisPlugin: FastifyPluginAsync<RedisPluginOptions> = async (app, { config }) => {
  if (!config.redisUrl) {
    app.decorate("redis", null);
    return;
  }
  const client = new Redis(config.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 2 });
  // ioredis reports every failed reconnect as an "error" event: log the first of an outage
  // (requests meanwhile get 503 LIMITS_UNAVAILABLE, password checks 503
  // THROTTLE_UNAVAILABLE), and its end.
  let down = false;
  client.on("error", (err: Error) => {
    if (!down) {
      app.log.warn({ err: err.message }, "redis unreachable; limits and sign-in fail closed");
    }
    down = true;
  });
  client.on("ready", () => {
    if (down) app.log.info("redis reachable again");
    down = false;
  });
  await client.connect();
  app.addHook("onClose", async () => {
    // QUIT would wait for a reconnect that may never come.
    if (client.status === "ready") await client.quit().catch(() => undefined);
    else client.disconnect();
  });
  app.decorate("redis", client);
};

export default fp(redisPlugin, { name: "redis", fastify: "5.x" });
