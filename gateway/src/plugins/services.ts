import type { FastifyInstance, FastifyPluginAsync } from "fastify";
import fp from "fastify-plugin";
import type { Config } from "../config.js";
import { HttpError } from "../errors.js";
import { ModelRouter, type Pool } from "../models/router.js";
import { Balancer } from "../services/balancer.js";
import { MemoryCache, RedisCache, type ResponseCache } from "../services/cache.js";
import { ChatService } from "../services/chat.js";
import { CompletionService } from "../services/completions.js";
import { ConversationService } from "../services/conversations.js";
import { type LimitStore, MemoryLimitStore } from "../services/limit-store.js";
import { LimitService } from "../services/limits.js";
import { LlmClient, upstreamAgent, upstreamError } from "../services/llm-client.js";
import { MeteredCalls } from "../services/metered.js";
import { Metering } from "../services/metering.js";
import { Metrics } from "../services/metrics.js";
import { type ListedModel, ListedModelNames, ModelGate } from "../services/model-gate.js";
import { RedisLimitStore } from "../services/redis-limit-store.js";
import type { UpstreamTarget } from "../services/upstream.js";
import { UsageService } from "../services/usage.js";

export interface GatewayServices {
  /** The model catalog: each model's pool and fallbacks (one pool without GATEWAY_MODELS_FILE). */
  router: ModelRouter;
  /** The default model's pool: its balancer and client. */
  balancer: Balancer;
  llm: LlmClient;
  metrics: Metrics;
  limits: LimitService;
  usage: UsageService;
  cache: ResponseCache;
  completions: CompletionService;
  /** Model lists and /analyze, limited and recorded. */
  metered: MeteredCalls;
  conversations: ConversationService;
  /** A conversation's chat turn through the completion pipeline. */
  chat: ChatService;
  /** Refuses models a caller may not use; adds per-model quotas to a call's limits. */
  gate: ModelGate;
  /** "memory" or "redis": where counters and cache live. */
  store: "memory" | "redis";
}

declare module "fastify" {
  interface FastifyInstance {
    services: GatewayServices;
  }
}

/** How long closing the app may spend writing waiting usage rows before spooling them. */
const USAGE_FLUSH_DEADLINE_MS = 5_000;

/**
 * The usage spool file, next to the SQLite file (DATABASE_PATH, also with PostgreSQL);
 * none for an in-memory database (tests), which keeps waiting rows in memory.
 */
export function usageSpoolPath(config: Pick<Config, "databasePath">): string | undefined {
  return config.databasePath === ":memory:" ? undefined : `${config.databasePath}.usage-spool`;
}

export interface ServicesPluginOptions {
  config: Config;
}

/**
 * The model router: one pool per model of GATEWAY_MODELS_FILE (else one of LLM_SERVER_URLS),
 * each a balancer (active health checks while the app runs) and its client.
 */
function upstreamServices(app: FastifyInstance, config: Config, metrics: Metrics) {
  const upstream = upstreamAgent(config.upstreamTls);
  // OpenAI upstreams are other parties' servers: public CAs, never the llm-servers' CA or
  // client certificate.
  const external = upstreamAgent();
  app.addHook("onClose", async () => {
    // Every client connection has ended by now: nothing of value is still in flight.
    await Promise.all([upstream.destroy(), external.destroy()]);
  });
  const pool = (
    name: string | null,
    targets: readonly (string | UpstreamTarget)[],
    spec?: Pool["spec"],
  ): Pool => {
    // The health checks connect as requests do (same TLS settings and pool).
    const balancer = new Balancer(targets, config.balancer, 1000, upstream);
    const llm = new LlmClient({
      dispatcher: upstream,
      balancer,
      token: config.llmServerToken,
      firstTokenTimeoutMs: config.firstTokenTimeoutMs,
      idleTimeoutMs: config.idleTimeoutMs,
      headersTimeoutMs: config.headersTimeoutMs,
      onAttempt: (server, outcome) => metrics.upstream.inc({ outcome, server }),
    });
    return { name, spec, balancer, llm };
  };
  const routing = config.models;
  const pools = routing
    ? routing.models.map((m) =>
        pool(
          m.name,
          m.upstreams.map((u) => ({ ...u, dispatcher: u.kind === "openai" ? external : upstream })),
          m,
        ),
      )
    : [pool(null, config.llmServerUrls)];
  const router = new ModelRouter(pools, routing);
  metrics.watchBalancer(() => router.snapshot());
  const { balancer, llm } = router.defaultPool;
  return { router, balancer, llm };
}

/** How long a read of the upstream's model list may take (it names the default model). */
const MODEL_LIST_TIMEOUT_MS = 5_000;

/**
 * What a request's `model` means, from the llm-servers' own `/v1/models` (their ids,
 * aliases and default), read only while some model rule or limit exists.
 */
function modelNames(llm: LlmClient): ListedModelNames {
  return new ListedModelNames(async () => {
    const up = await llm.send(
      {
        method: "GET",
        path: "/v1/models",
        clientId: "gateway",
        requestId: "model-names",
        signal: AbortSignal.timeout(MODEL_LIST_TIMEOUT_MS),
      },
      (res) => res.text(),
    );
    up.release(up.res.status >= 500);
    if (!up.res.ok) throw upstreamError(up.res.status, up.head);
    try {
      const list = JSON.parse(up.head) as { data?: ListedModel[] };
      return Array.isArray(list.data) ? list.data : [];
    } catch {
      throw new HttpError(502, "UPSTREAM_ERROR", "The model server's model list is not JSON");
    }
  });
}

/** The usage table's writer (spooled through outages), flushed before the database closes. */
async function usageService(app: FastifyInstance, config: Config, metrics: Metrics) {
  const usage = new UsageService(app.db, {
    spoolPath: usageSpoolPath(config),
    metrics,
    log: app.log,
  });
  await usage.start();
  // Runs before the database closes (onClose hooks run last-registered first).
  app.addHook("onClose", async () => {
    await usage.close(USAGE_FLUSH_DEADLINE_MS);
  });
  return usage;
}

/** Limits and the response cache, in Redis when REDIS_URL is set, else in memory. */
function limitServices(
  app: FastifyInstance,
  config: Config,
  metrics: Metrics,
  usage: UsageService,
) {
  const { redis } = app;
  const store: LimitStore = redis
    ? new RedisLimitStore(redis)
    : new MemoryLimitStore((subject, since) => usage.tokensSince(subject, since));
  const ttlMs = config.cache.ttlSeconds * 1000;
  const cache: ResponseCache = redis
    ? new RedisCache(redis, config.cache.maxEntries, ttlMs, config.cache.maxEntryBytes)
    : new MemoryCache(config.cache.maxEntries, ttlMs, config.cache.maxEntryBytes);
  const limits = new LimitService(
    app.db,
    store,
    config.limits,
    Date.now,
    config.authCacheTtlMs,
    (err, waiting) => {
      metrics.limitSettleFailures.inc();
      app.log.warn(
        { err: err instanceof Error ? err.message : String(err), waiting },
        "could not settle limit counters (usage is still recorded); retrying",
      );
    },
  );
  app.addHook("onClose", async () => limits.close());
  return { limits, cache };
}

/**
 * Builds the LLM-side services on the database: balancer, limits, usage analytics, metrics,
 * response cache and the completion pipeline, conversations and chat turns.
 */
const servicesPlugin: FastifyPluginAsync<ServicesPluginOptions> = async (app, { config }) => {
  const metrics = new Metrics();
  const { router, balancer, llm } = upstreamServices(app, config, metrics);
  const usage = await usageService(app, config, metrics);
  const { limits, cache } = limitServices(app, config, metrics, usage);
  // Stopped first on close (onClose hooks run last-registered first).
  app.addHook("onReady", async () => router.start());
  app.addHook("onClose", async () => router.stop());
  const metering = new Metering({ limits, usage, metrics });
  // Access rules are written for public names: the catalog's when there is a routing file.
  const names = router.routing
    ? { resolve: (sent?: string) => router.publicName(sent) }
    : modelNames(llm);
  const gate = new ModelGate(app.modelAccess, names);
  const completions = new CompletionService({
    gate,
    router,
    limits,
    metering,
    metrics,
    cache,
    cacheConfig: config.cache,
  });
  // Every route's requests, by route template, method and status (fp: applies app-wide).
  app.addHook("onResponse", async (request, reply) => {
    const route = request.routeOptions.url ?? "unmatched";
    const status = String(reply.statusCode);
    metrics.httpRequests.inc({ method: request.method, route, status });
    metrics.httpDuration.observe({ route, status }, reply.elapsedTime / 1000);
  });
  const conversations = new ConversationService(app.db);
  app.decorate("services", {
    router,
    balancer,
    llm,
    metrics,
    limits,
    usage,
    cache,
    completions,
    metered: new MeteredCalls({ llm, metering, gate }),
    gate,
    conversations,
    chat: new ChatService(completions, conversations),
    store: app.redis ? "redis" : "memory",
  });
};

export default fp(servicesPlugin, {
  name: "services",
  dependencies: ["database", "redis", "model-access"],
  fastify: "5.x",
});
