import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { ErrorEnvelope } from "../schemas.js";
import type { LlmServers } from "../services/llm-servers.js";

export interface HealthRoutesOptions {
  llmServers: LlmServers;
  /** Resolves when the database answers a query; rejects otherwise. */
  pingDatabase: () => Promise<void>;
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
  { llmServers, pingDatabase },
) => {
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
        summary: "Readiness: the database answers and at least one llm-server is ready",
        response: {
          200: Readiness,
          503: Readiness,
          "5xx": ErrorEnvelope,
        },
      },
    },
    async (request, reply) => {
      const [statuses, databaseReady] = await Promise.all([
        llmServers.probeAll(),
        pingDatabase().then(
          () => true,
          (err: unknown) => {
            request.log.error({ err }, "readiness: database unreachable");
            return false;
          },
        ),
      ]);
      const ready = databaseReady && statuses.some((s) => s.ready);
      return reply.code(ready ? 200 : 503).send({
        status: ready ? "ready" : "unavailable",
        database: { ready: databaseReady },
        llmServers: statuses,
      });
    },
  );
};
