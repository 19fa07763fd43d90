import cors from "@fastify/cors";
import helmet from "@fastify/helmet";
import type { FastifyPluginAsync } from "fastify";
import fp from "fastify-plugin";
import type { Config } from "../config.js";
import { requestPath } from "../errors.js";

/**
 * The CSP of every answer except the Swagger UI: the gateway serves JSON and event
 * streams, which load nothing and may never be framed.
 */
export const API_CSP = {
  defaultSrc: ["'none'"],
  frameAncestors: ["'none'"],
  baseUri: ["'none'"],
  formAction: ["'none'"],
};

/** The Swagger UI at /docs: its own scripts and styles (it sets inline styles), no framing. */
export const DOCS_CSP = {
  defaultSrc: ["'self'"],
  scriptSrc: ["'self'"],
  styleSrc: ["'self'", "'unsafe-inline'"],
  imgSrc: ["'self'", "data:"],
  fontSrc: ["'self'", "data:"],
  connectSrc: ["'self'"],
  objectSrc: ["'none'"],
  baseUri: ["'self'"],
  formAction: ["'self'"],
  frameAncestors: ["'none'"],
};

/** Paths whose answers are personal (accounts, keys, conversations, model output). */
const NO_STORE_PREFIXES = ["/api/", "/v1/"];

/** Headers a browser script on an allowed origin may read. */
const EXPOSED_HEADERS = [
  "retry-after",
  "ratelimit-limit",
  "ratelimit-remaining",
  "ratelimit-reset",
  "ratelimit-policy",
  "x-cache",
  "x-request-id",
  "set-auth-token",
];

export interface SecurityPluginOptions {
  config: Config;
}

/**
 * Security headers (helmet) and the CORS allowlist. Register before any route:
 * per-route CSP for /docs is attached in an `onRoute` hook.
 */
const securityPlugin: FastifyPluginAsync<SecurityPluginOptions> = async (app, { config }) => {
  // HSTS whenever clients reach us over https: behind a TLS proxy (https PUBLIC_URL) or
  // served directly from TLS_CERT_FILE / TLS_KEY_FILE.
  const https = new URL(config.publicUrl).protocol === "https:" || config.tls !== undefined;

  app.addHook("onRoute", (route) => {
    if (route.url === "/docs" || route.url.startsWith("/docs/")) {
      // Read by @fastify/helmet's own onRoute hook, which runs after this one.
      route.helmet = { contentSecurityPolicy: { useDefaults: false, directives: DOCS_CSP } };
    }
  });

  await app.register(helmet, {
    contentSecurityPolicy: { useDefaults: false, directives: API_CSP },
    frameguard: { action: "deny" },
    referrerPolicy: { policy: "no-referrer" },
    strictTransportSecurity: https ? { maxAge: 31_536_000, includeSubDomains: true } : false,
    // The web app (another origin) reads the API through CORS, which CORP does not restrict.
    crossOriginResourcePolicy: { policy: "same-site" },
  });

  // Set on the raw response so hijacked (SSE) replies carry it too.
  app.addHook("onRequest", async (request, reply) => {
    const path = requestPath(request.url);
    if (NO_STORE_PREFIXES.some((prefix) => path.startsWith(prefix))) {
      reply.raw.setHeader("cache-control", "no-store");
    }
  });

  const allowed = new Set(config.trustedOrigins);
  await app.register(cors, {
    // Only listed origins are echoed; any other gets no CORS headers at all.
    origin: (origin, callback) => {
      callback(null, origin !== undefined && allowed.has(origin));
    },
    credentials: true,
    methods: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
    exposedHeaders: EXPOSED_HEADERS,
    maxAge: 600,
  });
};

export default fp(securityPlugin, { name: "security", fastify: "5.x" });
