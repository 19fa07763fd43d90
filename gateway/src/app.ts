import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import Fastify, { type FastifyError, type FastifyInstance } from "fastify";
import type { Config } from "./config.js";
import { healthRoutes } from "./routes/health.js";
import { errorBody } from "./schemas.js";
import { LlmServers } from "./services/llm-servers.js";

/** Header paths that must never reach the logs. */
export const REDACTED_PATHS = [
  "req.headers.authorization",
  "req.headers.cookie",
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
];

/** Maps an HTTP status to the default error code of the envelope. */
function codeForStatus(status: number): string {
  switch (status) {
    case 400:
      return "BAD_REQUEST";
    case 401:
      return "UNAUTHORIZED";
    case 403:
      return "FORBIDDEN";
    case 404:
      return "NOT_FOUND";
    case 405:
      return "METHOD_NOT_ALLOWED";
    case 409:
      return "CONFLICT";
    case 413:
      return "PAYLOAD_TOO_LARGE";
    case 415:
      return "UNSUPPORTED_MEDIA_TYPE";
    case 429:
      return "RATE_LIMITED";
    case 503:
      return "SERVICE_UNAVAILABLE";
    default:
      return status >= 500 ? "INTERNAL_ERROR" : "BAD_REQUEST";
  }
}

/**
 * Builds the gateway application without listening, so tests can use `inject`.
 * The process entry point is `server.ts`.
 */
export async function buildApp(config: Config): Promise<FastifyInstance> {
  const app = Fastify({
    logger: {
      level: config.logLevel,
      redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.setErrorHandler<FastifyError>((error, request, reply) => {
    if (error.validation) {
      return reply.code(400).send(errorBody("VALIDATION_ERROR", error.message));
    }
    const status =
      typeof error.statusCode === "number" && error.statusCode >= 400 && error.statusCode < 600
        ? error.statusCode
        : 500;
    if (status >= 500) {
      request.log.error({ err: error }, "request failed");
      return reply
        .code(status)
        .send(
          errorBody(
            codeForStatus(status),
            status === 503 ? "Service unavailable" : "Internal server error",
          ),
        );
    }
    request.log.info({ err: error }, "client error");
    return reply.code(status).send(errorBody(codeForStatus(status), error.message));
  });

  app.setNotFoundHandler((request, reply) => {
    reply
      .code(404)
      .send(
        errorBody("NOT_FOUND", `Route ${request.method} ${request.url.split("?")[0]} not found`),
      );
  });

  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "LLM stack gateway",
        description: "Public API of the self-hosted LLM stack",
        version: "0.1.0",
      },
      tags: [{ name: "health", description: "Liveness and readiness probes" }],
    },
  });
  await app.register(swaggerUi, { routePrefix: "/docs" });

  const llmServers = new LlmServers({ urls: config.llmServerUrls, timeoutMs: 1000 });
  await app.register(healthRoutes, { llmServers });

  return app;
}
