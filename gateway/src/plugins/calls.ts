import type { FastifyPluginAsync } from "fastify";
import fp from "fastify-plugin";
import { type Principal, PrincipalResolver } from "../auth/principal.js";
import { TtlCache } from "../auth/ttl-cache.js";
import type { Config } from "../config.js";
import { isNull, unavailableAs503 } from "../db/outage.js";
import { ActiveCalls } from "../services/active-calls.js";

declare module "fastify" {
  interface FastifyInstance {
    /** Every LLM call in flight, so the gateway can end them (lost access, shutdown). */
    calls: ActiveCalls;
    /** Verified API keys, reused for AUTH_CACHE_TTL_MS (see PrincipalResolver). */
    keyCache: TtlCache<Principal>;
    /** Tells both that access changed here: the key cache is cleared, calls checked again. */
    authChanged: () => void;
  }
}

export interface CallsPluginOptions {
  config: Config;
}

/**
 * The calls in flight and the verified-key cache. Every call is checked again against the
 * database (no cache) every AUTH_CACHE_TTL_MS and right after a change made here: lost access
 * ends it. On close (SIGTERM) new requests are refused with 503 already; calls in flight get
 * SHUTDOWN_DRAIN_MS to finish, the rest end with an in-band error and record their usage.
 */
const callsPlugin: FastifyPluginAsync<CallsPluginOptions> = async (app, { config }) => {
  const keyCache = new TtlCache<Principal>(config.authCacheTtlMs);
  const fresh = new PrincipalResolver(app.auth, app.db);
  const { limits } = app.services;
  const calls = new ActiveCalls(
    {
      resolve: async (headers) => {
        // A check the database could not answer is no verdict: it throws, the call goes on
        // and is checked again next time (not ended as access revoked).
        const p = await unavailableAs503(() => fresh.resolve(headers), isNull);
        return p ? { userId: p.user.id, role: p.user.role } : null;
      },
      maxTokens: async (caller) => limits.maxTokens(await limits.subjects(caller)),
      modelAllowed: (caller, model) => app.services.gate.allows(caller, model),
    },
    config.authCacheTtlMs > 0 ? config.authCacheTtlMs : 1000,
  );
  app.addHook("onReady", async () => calls.start());
  app.addHook("preClose", async () => calls.drain(config.shutdownDrainMs, 1000));
  app.addHook("onClose", async () => calls.stop());
  app.decorate("calls", calls);
  app.decorate("keyCache", keyCache);
  app.decorate("authChanged", () => {
    keyCache.clear();
    calls.recheckSoon();
  });
};

export default fp(callsPlugin, {
  name: "calls",
  dependencies: ["database", "services"],
  fastify: "5.x",
});
