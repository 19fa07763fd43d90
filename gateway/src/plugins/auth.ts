import { fromNodeHeaders } from "better-auth/node";
import type { FastifyPluginAsync, FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import { CLIENT_IP_HEADER } from "../auth/auth.js";
import { type Principal, PrincipalResolver } from "../auth/principal.js";
import { LoginThrottle } from "../auth/throttle.js";
import type { TtlCache } from "../auth/ttl-cache.js";
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
const SIGN_IN_PATH = "/api/auth/sign-in/email";

function emailOf(body: unknown): string {
  if (!Buffer.isBuffer(body)) return "";
  try {
    const parsed = JSON.parse(body.toString("utf8")) as { email?: unknown };
    return typeof parsed.email === "string" ? parsed.email.trim().toLowerCase() : "";
  } catch {
    return "";
  }
}

export interface AuthPluginOptions {
  config: Config;
  throttle?: LoginThrottle;
  /** Verified API keys (see PrincipalResolver); cleared by every change through better-auth. */
  keyCache?: TtlCache<Principal>;
}

const authPlugin: FastifyPluginAsync<AuthPluginOptions> = async (app, options) => {
  const { config } = options;
  const throttle = options.throttle ?? new LoginThrottle();
  const keyCache = options.keyCache;
  const resolver = new PrincipalResolver(app.auth, app.db, keyCache);
  const trusted = new Set([config.webOrigin, config.publicUrl, ...config.corsOrigins]);
  app.decorateRequest("principal", null);

  app.addHook("onRequest", async (request) => {
    const level = request.routeOptions.config.auth ?? "public";
    if (level === "public") return;
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
    if (level === "session" && principal.via === "api-key") {
      throw forbidden("API keys cannot call this route; sign in");
    }
    if (level === "admin") {
      if (principal.user.role !== "admin") throw forbidden("Admins only");
      if (config.requireAdmin2fa && !principal.user.twoFactorEnabled) {
        throw new HttpError(403, "TWO_FACTOR_REQUIRED", "Enable two-factor authentication first");
      }
    }
    request.principal = principal;
  });

  // better-auth's own endpoints, with the raw body handed over untouched.
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
        const signIn = request.method === "POST" && request.url.split("?")[0] === SIGN_IN_PATH;
        const email = signIn ? emailOf(request.body) : "";
        if (signIn) {
          const wait = throttle.retryAfter(email, request.ip);
          if (wait > 0) {
            reply.header("retry-after", String(wait)).header("cache-control", "no-store");
            return reply.code(429).send({
              code: "TOO_MANY_ATTEMPTS",
              message: "Too many failed sign-in attempts; try again later",
            });
          }
        }
        const headers = fromNodeHeaders(request.headers);
        headers.set(CLIENT_IP_HEADER, request.ip);
        const hasBody = request.method !== "GET" && Buffer.isBuffer(request.body);
        let response: Response;
        try {
          const forward = new Request(new URL(request.url, config.publicUrl), {
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
          if (request.method !== "GET") keyCache?.clear();
        }
        if (signIn && response.status === 401) throttle.fail(email, request.ip);
        if (signIn && response.status === 200) throttle.succeed(email);
        reply.code(response.status);
        response.headers.forEach((value, key) => {
          reply.header(key, value);
        });
        reply.header("cache-control", "no-store");
        return reply.send(response.body ? Buffer.from(await response.arrayBuffer()) : null);
      },
    });
  });
};

export default fp(authPlugin, { name: "auth", dependencies: ["database"], fastify: "5.x" });
