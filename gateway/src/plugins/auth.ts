import { fromNodeHeaders } from "better-auth/node";
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import { CLIENT_IP_HEADER, TWO_FACTOR_LOCK_SECONDS } from "../auth/auth.js";
import { type Principal, PrincipalResolver } from "../auth/principal.js";
import type { Config } from "../config.js";
import { isFailure, isNull, unavailableAs503 } from "../db/outage.js";
import { forbidden, HttpError, unauthorized } from "../errors.js";

/**
 * Who may call a route, declared in its `config.auth`:
 * - `public`: anyone (the default);
 * - `user`: any signed-in, enabled account, by cookie, bearer token, JWT or API key;
 * - `session`: a signed-in account, but not by API key (account settings, key management);
 * - `admin`: an account with the admin role (and 2FA when REQUIRE_ADMIN_2FA is set).
 */
export type AuthLevel = "public" | "user" | "session" | "admin";

declare module "fastify" {
  interface FastifyContextConfig {
    auth?: AuthLevel;
    /** A pending account (waiting for an admin's approval) may call it; others it may not. */
    allowPending?: boolean;
  }
  interface FastifyRequest {
    principal: Principal | null;
  }
}

/** The caller of a route that declared `user`, `session` or `admin`. */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw unauthorized();
  return request.principal;
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);
const AUTH_PREFIX = "/api/auth/";

/**
 * The path and query better-auth is handed, or null when the request target is not in its
 * one canonical spelling: absolute-form (`http://host/api/auth/…`), dot segments (`/./`,
 * `%2e`), backslashes, doubled slashes or a trailing slash. better-auth's router would
 * normalise some of those into a real endpoint; they are refused instead, so what the
 * gateway checks and what better-auth runs are the same path.
 */
export function canonicalAuthTarget(rawUrl: string): string | null {
  if (!rawUrl.startsWith(AUTH_PREFIX)) return null;
  const q = rawUrl.indexOf("?");
  const path = q === -1 ? rawUrl : rawUrl.slice(0, q);
  let parsed: URL;
  try {
    parsed = new URL(`http://gateway.invalid${rawUrl}`);
  } catch {
    return null;
  }
  if (parsed.pathname !== path || /\/\/|\/$|%2e|%2f|%5c/i.test(path)) return null;
  return rawUrl;
}

export interface AuthPluginOptions {
  config: Config;
}

/** Who the caller is, checked against the route's `config.auth` level (else it throws). */
async function authorize(
  request: FastifyRequest,
  level: AuthLevel,
  resolver: PrincipalResolver,
  { config, trusted }: { config: Config; trusted: ReadonlySet<string> },
): Promise<Principal> {
  // A caller that could not be checked because the database is down gets 503, not 401.
  const principal = await unavailableAs503(() => resolver.resolve(request.headers), isNull);
  if (!principal) throw unauthorized();
  if (principal.via === "cookie" && !SAFE_METHODS.has(request.method)) {
    // CSRF: SameSite=Lax cookies already stay home; also refuse foreign origins.
    const origin = request.headers.origin;
    if (
      (origin !== undefined && !trusted.has(origin)) ||
      request.headers["sec-fetch-site"] === "cross-site"
    ) {
      throw new HttpError(403, "CSRF_REJECTED", "Cross-site request refused");
    }
  }
  if (principal.user.pending && !request.routeOptions.config.allowPending) {
    throw new HttpError(
      403,
      "ACCOUNT_PENDING",
      "Your account is waiting for an admin's approval; until then it can use nothing",
    );
  }
  if (level === "session" && principal.via === "api-key") {
    throw forbidden("API keys cannot call this route; sign in");
  }
  if (level === "admin") {
    if (principal.user.role !== "admin") throw forbidden("Admins only");
    if (config.requireAdmin2fa && !principal.user.twoFactorEnabled) {
      throw new HttpError(403, "TWO_FACTOR_REQUIRED", "Enable two-factor authentication first");
    }
  }
  return principal;
}

/** better-auth's own endpoints under /api/auth/*, with the raw body handed over untouched. */
async function mountBetterAuth(app: FastifyInstance, config: Config): Promise<void> {
  const { keyCache } = app;
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", { parseAs: "buffer" }, (_req, body, done) => {
      done(null, body);
    });
    scope.route({
      method: ["GET", "POST"],
      url: "/api/auth/*",
      schema: { hide: true },
      handler: async (request, reply) => {
        // Password checks are throttled and better-auth's own admin endpoints refused inside
        // better-auth (auth/guards.ts), on the path it resolved; here only one spelling passes.
        const target = canonicalAuthTarget(request.url);
        if (target === null) {
          throw new HttpError(404, "NOT_FOUND", "Not found: use the canonical /api/auth/… path");
        }
        const headers = fromNodeHeaders(request.headers);
        headers.set(CLIENT_IP_HEADER, request.ip);
        const hasBody = request.method !== "GET" && Buffer.isBuffer(request.body);
        let response: Response;
        try {
          const forward = new Request(new URL(target, config.publicUrl), {
            method: request.method,
            headers,
            ...(hasBody ? { body: request.body as Buffer } : {}),
          });
          // better-auth answers a database outage itself (500 with no body, 422 on sign-up):
          // 503 instead (db/outage.ts).
          response = await unavailableAs503(() => app.auth.handler(forward), isFailure);
        } finally {
          // Any POST may change a key, a user's role, ban or 2FA (api-key/update|delete,
          // admin/*, delete-user…): verified keys are checked again from the database.
          if (request.method !== "GET") keyCache.clear();
        }
        reply.code(response.status);
        response.headers.forEach((value, key) => {
          reply.header(key, value);
        });
        reply.header("cache-control", "no-store");
        if (response.status === 429 && !response.headers.has("retry-after")) {
          // better-auth's rate limiter says X-Retry-After; its second-factor lock says nothing.
          const wait = response.headers.get("x-retry-after") ?? String(TWO_FACTOR_LOCK_SECONDS);
          reply.header("retry-after", wait);
        }
        return reply.send(response.body ? Buffer.from(await response.arrayBuffer()) : null);
      },
    });
  });
}

const authPlugin: FastifyPluginAsync<AuthPluginOptions> = async (app, { config }) => {
  // Verified API keys (see PrincipalResolver); cleared by every change through better-auth.
  const resolver = new PrincipalResolver(app.auth, app.db, app.keyCache);
  const trusted = new Set(config.trustedOrigins);
  app.decorateRequest("principal", null);
  app.addHook("onRequest", async (request) => {
    const level = request.routeOptions.config.auth ?? "public";
    if (level === "public") return;
    request.principal = await authorize(request, level, resolver, { config, trusted });
  });
  await mountBetterAuth(app, config);
};

export default fp(authPlugin, {
  name: "auth",
  dependencies: ["database", "calls"],
  fastify: "5.x",
});
