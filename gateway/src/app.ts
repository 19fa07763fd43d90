import { randomUUID } from "node:crypto";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from "fastify";
import { requestSerializer } from "./auth/redact.js";
import type { Config } from "./config.js";
import { isDatabaseUnavailable } from "./db/outage.js";
import {
  answerClientError,
  codeForStatus,
  databaseUnavailable,
  errorPayload,
  HttpError,
} from "./errors.js";
import { boundJsonDepth } from "./json-body.js";
import accountsPlugin from "./plugins/accounts.js";
import authPlugin from "./plugins/auth.js";
import callsPlugin from "./plugins/calls.js";
import databasePlugin from "./plugins/database.js";
import modelAccessPlugin from "./plugins/model-access.js";
import redisPlugin from "./plugins/redis.js";
import securityPlugin from "./plugins/security.js";
import servicesPlugin from "./plugins/services.js";
import tracingPlugin from "./plugins/tracing.js";
import { adminRoutes } from "./routes/admin.js";
import { adminModelRoutes } from "./routes/admin-models.js";
import { authProvidersRoutes } from "./routes/auth-providers.js";
import { conversationRoutes } from "./routes/conversations.js";
import { healthRoutes } from "./routes/health.js";
import { invitationRoutes } from "./routes/invitations.js";
import { keyLimitRoutes } from "./routes/key-limits.js";
import { llmRoutes } from "./routes/llm.js";
import { modelAccessRoutes } from "./routes/model-access.js";
import { setupRoutes } from "./routes/setup.js";
import { usageRoutes } from "./routes/usage.js";
import { userRoutes } from "./routes/user.js";
import type { Tracing } from "./services/tracing.js";
import { validatorCompiler } from "./validation.js";

/** Header paths that must never reach the logs. */
export const REDACTED_PATHS = [
  "req.headers.authorization",
  "req.headers.cookie",
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
];

/**
 * One log line per request, once it is answered (method, URL, client, status, duration),
 * instead of Fastify's two ("incoming request", then "request completed").
 */
class OneLinePerRequest extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(
    error: Error | null | undefined,
    request: FastifyRequest,
    reply: FastifyReply,
  ): void {
    const line = { req: request, res: reply, responseTime: reply.elapsedTime };
    if (error) reply.log.error({ ...line, err: error }, "request errored");
    else reply.log.info(line, "request completed");
  }
}

/** What buildApp takes besides the configuration. */
export interface BuildOptions {
  /**
   * Where log lines go (default stdout, written synchronously); tests capture them, and
   * server.ts passes an asynchronous stdout that it flushes before exiting.
   */
  logStream?: { write(line: string): void };
  /**
   * The operator's channel (server.ts: stdout), apart from the log: the one-time setup link
   * for the first admin is written here at start while no admin exists. None: no link.
   */
  operatorOut?: { write(line: string): void };
  /** OpenTelemetry tracing (server.ts: from OTEL_*); default: traceparent propagation only. */
  tracing?: Tracing;
}

/** The Fastify instance: logging, TLS, body bounds, validation; no plugin or route yet. */
function createServer(config: Config, options: BuildOptions) {
  const app = Fastify({
    logger: {
      level: config.logLevel,
      ...(options.logStream ? { stream: options.logStream } : {}),
      redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
      // No OAuth code, reset token or other secret from /api/auth URLs in the log.
      serializers: { req: requestSerializer },
    },
    // HTTPS straight from the certificate files (Fastify takes it at construction only).
    ...(config.tls ? { https: { cert: config.tls.cert, key: config.tls.key } } : {}),
    logController: new OneLinePerRequest(),
    genReqId: () => randomUUID(),
    trustProxy: config.trustProxy,
    bodyLimit: 1_048_576,
    // 431/400/408 for what Node's parser refuses, in the envelope, without a reset connection.
    clientErrorHandler: answerClientError,
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.setValidatorCompiler(validatorCompiler);
  boundJsonDepth(app);

  // A request whose connection closes before its answer finished (a client that leaves a
  // stream, a timeout) gets its line too: Fastify's "request completed" needs a finished reply.
  app.addHook("onRequest", (request, reply, done) => {
    reply.raw.once("close", () => {
      if (reply.raw.writableEnded) return;
      request.log.info(
        { req: request, res: reply, responseTime: reply.elapsedTime },
        "request closed before its answer finished",
      );
    });
    done();
  });
  app.setErrorHandler<FastifyError | HttpError>(handleError);
  app.setNotFoundHandler((request, reply) => {
    const message = `Route ${request.method} ${request.url.split("?")[0]} not found`;
    reply.code(404).send(errorPayload(request.url, 404, "NOT_FOUND", message));
  });
  return app;
}

/**
 * The one error envelope of every route: validation 400, an HttpError's own status and code,
 * a database outage 503, anything unexpected a generic 500.
 */
function handleError(
  caught: FastifyError | HttpError,
  request: FastifyRequest,
  reply: FastifyReply,
) {
  // A locked, read-only, full or unreachable database is temporary: 503 + Retry-After,
  // whichever route hit it (never a 500, nor a 401/422 from an auth check that could not
  // run). An HttpError already says what failed: a network error in its cause (an
  // llm-server that refused the connection) is not the database's.
  const error =
    !(caught instanceof HttpError) && isDatabaseUnavailable(caught)
      ? databaseUnavailable(caught)
      : caught;
  if (error instanceof HttpError) reply.headers(error.headers);
  if ("validation" in error && error.validation) {
    return reply.code(400).send(errorPayload(request.url, 400, "VALIDATION_ERROR", error.message));
  }
  const status =
    typeof error.statusCode === "number" && error.statusCode >= 400 && error.statusCode < 600
      ? error.statusCode
      : 500;
  if (status >= 500) {
    request.log.error({ err: error }, "request failed");
    // An HttpError's code and message are written for the client (LLM_BUSY, a timeout
    // that says which); anything else is unexpected and stays generic.
    if (error instanceof HttpError) {
      return reply.code(status).send(errorPayload(request.url, status, error.code, error.message));
    }
    const message = status === 503 ? "Service unavailable" : "Internal server error";
    return reply
      .code(status)
      .send(errorPayload(request.url, status, codeForStatus(status), message));
  }
  request.log.info({ err: error }, "client error");
  const code = error instanceof HttpError ? error.code : codeForStatus(status);
  return reply.code(status).send(errorPayload(request.url, status, code, error.message));
}

/** The OpenAPI document (/docs/json) and its UI (/docs). */
async function registerDocs(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "LLM stack gateway",
        description: "Public API of the self-hosted LLM stack",
        version: "0.1.0",
      },
      tags: [
        { name: "health", description: "Liveness and readiness probes" },
        { name: "auth", description: "Sign-in providers (better-auth itself is at /api/auth/*)" },
        { name: "user", description: "The signed-in account and its API keys" },
        { name: "admin", description: "User management (admins only)" },
        { name: "conversations", description: "The caller's conversations and chat turns" },
        { name: "llm", description: "Model calls for the browser (session or API key)" },
        { name: "openai", description: "OpenAI-compatible API (Authorization: Bearer <API key>)" },
      ],
      components: {
        securitySchemes: {
          bearer: { type: "http", scheme: "bearer", description: "API key, JWT or session token" },
          cookie: { type: "apiKey", in: "cookie", name: "better-auth.session_token" },
        },
      },
    },
  });
  await app.register(swaggerUi, { routePrefix: "/docs" });
}

/** Every route, on the services the plugins decorated the app with. */
async function registerRoutes(
  app: FastifyInstance,
  config: Config,
  options: BuildOptions,
): Promise<void> {
  const { services, accounts, calls } = app;
  const { heartbeatMs } = config;
  await app.register(healthRoutes, {
    balancer: services.router,
    probeDatabase: (timeoutMs) => app.db.probe(timeoutMs),
  });
  await app.register(authProvidersRoutes, { oauth: config.oauth });
  await app.register(userRoutes, { users: accounts.users, apiKeys: accounts.apiKeys });
  await app.register(adminRoutes, { users: accounts.users });
  await app.register(invitationRoutes, {
    auth: app.auth,
    invitations: accounts.invitations,
    users: accounts.users,
    publicUrl: config.publicUrl,
  });
  await app.register(setupRoutes, {
    setup: accounts.setup,
    webOrigin: config.publicUrl,
    operatorOut: options.operatorOut,
  });
  await app.register(usageRoutes, {
    services,
    users: accounts.users,
    metricsToken: config.metricsToken,
  });
  await app.register(keyLimitRoutes, {
    limits: services.limits,
    apiKeys: accounts.apiKeys,
    users: accounts.users,
  });
  await app.register(modelAccessRoutes, {
    modelAccess: app.modelAccess,
    users: accounts.users,
    rulesChanged: () => calls.recheckSoon(),
  });
  await app.register(llmRoutes, {
    metered: services.metered,
    router: services.router,
    completions: services.completions,
    calls,
    heartbeatMs,
    gate: services.gate,
  });
  await app.register(adminModelRoutes, { router: services.router, usage: services.usage });
  await app.register(conversationRoutes, {
    conversations: services.conversations,
    chat: services.chat,
    calls,
    heartbeatMs,
  });
}

/**
 * Our llm-servers' base URLs (those of the routing file when there is one): the upstreams a
 * trace context goes to; an OpenAI-compatible server of another party gets none.
 */
function llmServerUrls(config: Config): string[] {
  if (!config.models) return config.llmServerUrls;
  const urls = config.models.models.flatMap((m) => m.upstreams);
  return [...new Set(urls.filter((u) => u.kind === "llm-server").map((u) => u.url))];
}

/**
 * Builds the gateway application without listening, so tests can use `inject`: plugins in
 * the order of their dependencies, then the routes. The process entry point is `server.ts`.
 */
export async function buildApp(
  config: Config,
  options: BuildOptions = {},
): Promise<FastifyInstance> {
  const app = createServer(config, options);
  await app.register(tracingPlugin, { tracing: options.tracing, upstreams: llmServerUrls(config) });
  await app.register(securityPlugin, { config });
  await registerDocs(app);
  await app.register(redisPlugin, { config });
  await app.register(databasePlugin, { config });
  await app.register(modelAccessPlugin, { config });
  await app.register(servicesPlugin, { config });
  await app.register(callsPlugin, { config });
  await app.register(authPlugin, { config });
  await app.register(accountsPlugin, { config });
  await registerRoutes(app, config, options);
  return app;
}
