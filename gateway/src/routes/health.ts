import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { ErrorEnvelope } from "../schemas.js";
import type { Balancer } from "../services/balancer.js";

export interface HealthRoutesOptions {
  /** The llm-servers' states from the balancer's active health checks. */
  balancer: Pick<Balancer, "checked" | "snapshot">;
  /** Resolves when the database can be read and written within `timeoutMs`; rejects otherwise. */
  probeDatabase: (timeoutMs: number) => Promise<void>;
}

/** How long the database probe may wait (a lock held longer is an outage). */
export const DB_PROBE_TIMEOUT_MS = 1_000;
/** A probe's answer is reused this long: frequent readiness checks cost one probe. */
export const DB_PROBE_CACHE_MS = 1_000;

/**
 * `probe` answered from a cache of `ttlMs` (success or failure alike), with at most one probe
 * in flight; resolves to true when the database is usable.
 */
export function cachedProbe(
  probe: () => Promise<void>,
  ttlMs: number,
  onFailure: (err: unknown) => void,
): () => Promise<boolean> {
  let last: { at: number; ready: Promise<boolean> } | null = null;
  return () => {
    const now = Date.now();
    if (last && now - last.at < ttlMs) return last.ready;
    const ready = probe().then(
      () => true,
      (err: unknown) => {
        onFailure(err);
        return false;
      },
    );
    last = { at: now, ready };
    return ready;
  };
}

const LlmServerStatus = Type.Object({
  url: Type.String(),
  ready: Type.Boolean(),
});

const Readiness = Type.Object({
  status: Type.Union([Type.Literal("ready"), Type.Literal("unavailable")]),
  database: Type.Object({ ready: Type.Boolean() }),
  llmServers: Type.Array(LlmServerStatus),
});

export const healthRoutes: FastifyPluginAsyncTypebox<HealthRoutesOptions> = async (
  app,
  { balancer, probeDatabase },
) => {
  const databaseReady = cachedProbe(
    () => probeDatabase(DB_PROBE_TIMEOUT_MS),
    DB_PROBE_CACHE_MS,
    (err) => app.log.error({ err }, "readiness: database unavailable"),
  );
  app.get(
    "/health",
    {
      schema: {
        tags: ["health"],
        summary: "Liveness: the gateway process is up",
        response: {
          200: Type.Object({ status: Type.Literal("ok") }),
          "5xx": ErrorEnvelope,
        },
      },
    },
    async () => ({ status: "ok" as const }),
  );

  app.get(
    "/health/ready",
    {
      schema: {
        tags: ["health"],
        summary:
          "Readiness: the database can be read and written, and at least one llm-server is ready",
        response: {
          200: Readiness,
          503: Readiness,
          "5xx": ErrorEnvelope,
        },
      },
    },
    async (_request, reply) => {
      // An llm-server is ready when its last health check passed (and it is not ejected);
      // before the first round of checks ended, that round is waited for.
      const [, database] = await Promise.all([balancer.checked(), databaseReady()]);
      const statuses = balancer
        .snapshot()
        .servers.map((s) => ({ url: s.url, ready: s.state === "healthy" }));
      const ready = database && statuses.some((s) => s.ready);
      return reply.code(ready ? 200 : 503).send({
        status: ready ? "ready" : "unavailable",
        database: { ready: database },
        llmServers: statuses,
      });
    },
  );
};
