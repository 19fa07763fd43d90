import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { ErrorEnvelope } from "../schemas.js";
import type { LlmServers } from "../services/llm-servers.js";

export interface HealthRoutesOptions {
  llmServers: LlmServers;
}

const LlmServerStatus = Type.Object({
  url: Type.String(),
  ready: Type.Boolean(),
});

const Readiness = Type.Object({
  status: Type.Union([Type.Literal("ready"), Type.Literal("unavailable")]),
  llmServers: Type.Array(LlmServerStatus),
});

export const healthRoutes: FastifyPluginAsyncTypebox<HealthRoutesOptions> = async (
  app,
  { llmServers },
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
        summary: "Readiness: at least one llm-server is ready",
        response: {
          200: Readiness,
          503: Readiness,
          "5xx": ErrorEnvelope,
        },
      },
    },
    async (_request, reply) => {
      const statuses = await llmServers.probeAll();
      if (statuses.some((s) => s.ready)) {
        return reply.code(200).send({ status: "ready", llmServers: statuses });
      }
      return reply.code(503).send({ status: "unavailable", llmServers: statuses });
    },
  );
};
