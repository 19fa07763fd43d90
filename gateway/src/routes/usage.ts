import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { safeEqual } from "../auth/redact.js";
import { forbidden, HttpError } from "../errors.js";
import { principalOf } from "../plugins/auth.js";
import type { GatewayServices } from "../plugins/services.js";
import { authErrors, DateTime, IdParams, NullableDateTime } from "../schemas.js";
import { DAY_MS } from "../services/limit-store.js";
import type { UserService } from "../services/users.js";

export interface UsageRoutesOptions {
  services: GatewayServices;
  users: UserService;
  metricsToken: string | undefined;
}

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) =>
  Type.Union([t, Type.Null()]);
const Meter = Type.Object({
  used: Type.Integer(),
  limit: Nullable(Type.Integer()),
  remaining: Nullable(Type.Integer()),
  resetAt: NullableDateTime,
});
const Quota = Type.Object({
  requestsPerMinute: Meter,
  tokensPerDay: Meter,
  concurrentStreams: Meter,
  maxTokensPerRequest: Nullable(Type.Integer()),
  models: Type.Array(Type.Object({ model: Type.String(), tokensPerDay: Meter }), {
    description: "Daily token quotas of single models, on top of tokensPerDay",
  }),
});
const Ms = Nullable(Type.Number());
const StatsFields = {
  requests: Type.Integer(),
  errors: Type.Integer(),
  errorRate: Type.Number(),
  rejected: Type.Integer(),
  cacheHits: Type.Integer(),
  cacheHitRate: Type.Number(),
  promptTokens: Type.Integer(),
  completionTokens: Type.Integer(),
  totalTokens: Type.Integer(),
  latencyP50Ms: Ms,
  latencyP95Ms: Ms,
  latencyP99Ms: Ms,
  ttftP50Ms: Ms,
  ttftP95Ms: Ms,
  ttftP99Ms: Ms,
};
const Stats = Type.Object(StatsFields);
export const Limit = Type.Integer({ minimum: 0, description: "0 = no limit" });
export const LimitsObj = Type.Object({
  requestsPerMinute: Limit,
  tokensPerDay: Limit,
  concurrentStreams: Limit,
  maxTokens: Limit,
});
/** A body of limit overrides: only these four fields, each a limit or null (`nullMeans`). */
export function overridesBody(nullMeans: string, options: { minProperties?: number } = {}) {
  const Override = Type.Optional(Type.Union([Limit, Type.Null()], { description: nullMeans }));
  return Type.Object(
    {
      requestsPerMinute: Override,
      tokensPerDay: Override,
      concurrentStreams: Override,
      maxTokens: Override,
    },
    { additionalProperties: false, ...options },
  );
}
export const LimitsPatch = overridesBody("null = role default", { minProperties: 1 });
export const Overrides = Type.Object({
  requestsPerMinute: Nullable(Limit),
  tokensPerDay: Nullable(Limit),
  concurrentStreams: Nullable(Limit),
  maxTokens: Nullable(Limit),
});
const UserLimits = Type.Object({
  userId: Type.String(),
  overrides: Overrides,
  effective: LimitsObj,
});

type App = Parameters<FastifyPluginAsyncTypebox>[0];

/** The caller's quota and usage. */
function userUsageRoute(app: App, { services }: UsageRoutesOptions): void {
  const { limits, usage } = services;
  app.get(
    "/api/user/usage",
    {
      config: { auth: "user" },
      schema: {
        tags: ["user"],
        summary: "Own usage: quota meters with reset times, and per-day totals",
        querystring: Type.Object(
          { days: Type.Integer({ minimum: 1, maximum: 366, default: 30 }) },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            quota: Quota,
            limits: LimitsObj,
            totals: Stats,
            days: Type.Array(
              Type.Object({
                day: Type.String(),
                requests: Type.Integer(),
                promptTokens: Type.Integer(),
                completionTokens: Type.Integer(),
                cacheHits: Type.Integer(),
                errors: Type.Integer(),
              }),
            ),
          }),
          ...authErrors,
        },
      },
    },
    async (request) => {
      const p = principalOf(request);
      const caller = { userId: p.user.id, role: p.user.role, apiKeyId: null };
      const [total, perModel] = await Promise.all([
        limits.quota(caller),
        services.gate.quotas(caller),
      ]);
      const models = await Promise.all(
        perModel.map(async (q) => ({
          model: q.model,
          tokensPerDay: await limits.tokenMeter(q.subject),
        })),
      );
      const quota = { ...total, models };
      const history = await usage.days(p.user.id, request.query.days, Date.now());
      return {
        quota,
        limits: (await limits.describe(p.user.id, p.user.role)).effective,
        ...history,
      };
    },
  );
}

/** Usage of every user, grouped. */
function adminUsageRoute(app: App, { services }: UsageRoutesOptions): void {
  const { usage } = services;
  app.get(
    "/api/admin/usage",
    {
      config: { auth: "admin" },
      schema: {
        tags: ["admin"],
        summary: "Usage over [from, to) by user, day or model: totals, latency percentiles, rates",
        querystring: Type.Object(
          {
            from: Type.Optional(DateTime),
            to: Type.Optional(DateTime),
            groupBy: Type.Union(
              [Type.Literal("user"), Type.Literal("day"), Type.Literal("model")],
              { default: "day" },
            ),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            from: DateTime,
            to: DateTime,
            groupBy: Type.String(),
            totals: Stats,
            rows: Type.Array(
              Type.Object({
                day: Type.Optional(Type.String()),
                userId: Type.Optional(Type.String()),
                email: Type.Optional(Nullable(Type.String())),
                model: Type.Optional(Type.String()),
                ...StatsFields,
              }),
            ),
          }),
          ...authErrors,
        },
      },
    },
    async (request) => {
      const to = request.query.to ? Date.parse(request.query.to) : Date.now() + 1;
      const from = request.query.from ? Date.parse(request.query.from) : to - 30 * DAY_MS;
      if (!(from < to)) throw new HttpError(400, "VALIDATION_ERROR", "from must be before to");
      return usage.aggregate(from, to, request.query.groupBy);
    },
  );
}

/** The llm-servers' state, and purging the cache. */
function serverRoutes(app: App, { services }: UsageRoutesOptions): void {
  const { router, cache } = services;
  app.get(
    "/api/admin/servers",
    {
      config: { auth: "admin" },
      schema: {
        tags: ["admin"],
        summary: "llm-servers with their state and load, and the gateway queue",
        response: {
          200: Type.Object({
            servers: Type.Array(
              Type.Object({
                url: Type.String(),
                state: Type.Union([
                  Type.Literal("unknown"),
                  Type.Literal("healthy"),
                  Type.Literal("unhealthy"),
                  Type.Literal("ejected"),
                ]),
                outstanding: Type.Integer(),
                capacity: Type.Integer(),
                running: Nullable(Type.Integer()),
                queued: Nullable(Type.Integer()),
                maxRunning: Nullable(Type.Integer()),
                consecutiveFailures: Type.Integer(),
                requests: Type.Integer(),
                failures: Type.Integer(),
                lastCheckAt: NullableDateTime,
                lastError: Nullable(Type.String()),
              }),
            ),
            queue: Type.Object({
              waiting: Type.Integer(),
              max: Type.Integer(),
              timeoutMs: Type.Integer(),
            }),
          }),
          ...authErrors,
        },
      },
    },
    async () => router.snapshot(),
  );

  app.delete(
    "/api/admin/cache",
    {
      config: { auth: "admin" },
      schema: {
        tags: ["admin"],
        summary: "Purge the response cache",
        response: { 200: Type.Object({ purged: Type.Integer() }), ...authErrors },
      },
    },
    async () => ({ purged: await cache.purge() }),
  );
}

/** An admin's limits for one user. */
function userLimitRoutes(app: App, { services, users }: UsageRoutesOptions): void {
  const { limits } = services;
  app.get(
    "/api/admin/users/:id/limits",
    {
      config: { auth: "admin" },
      schema: {
        tags: ["admin"],
        summary: "A user's limit overrides and effective limits",
        params: IdParams,
        response: { 200: UserLimits, ...authErrors },
      },
    },
    async (request) => {
      const user = await users.get(request.params.id);
      return await limits.describe(user.id, user.role);
    },
  );

  app.patch(
    "/api/admin/users/:id/limits",
    {
      config: { auth: "admin" },
      schema: {
        tags: ["admin"],
        summary: "Override a user's limits (0 = no limit, null = back to the role default)",
        params: IdParams,
        body: LimitsPatch,
        response: { 200: UserLimits, ...authErrors },
      },
    },
    async (request) => {
      const user = await users.get(request.params.id);
      await limits.setOverrides(user.id, `user:${user.id}`, request.body);
      return await limits.describe(user.id, user.role);
    },
  );
}

/** Prometheus metrics (METRICS_TOKEN or loopback). */
function metricsRoute(app: App, { services, metricsToken }: UsageRoutesOptions): void {
  const { metrics } = services;
  app.get(
    "/metrics",
    { schema: { tags: ["health"], summary: "Prometheus metrics", hide: false } },
    async (request, reply) => {
      const auth = request.headers.authorization;
      const allowed = metricsToken
        ? safeEqual(auth, `Bearer ${metricsToken}`)
        : ["127.0.0.1", "::1", "::ffff:127.0.0.1"].includes(request.socket.remoteAddress ?? "");
      if (!allowed) throw forbidden("Metrics need METRICS_TOKEN or a loopback client");
      return reply.type(metrics.contentType).send(await metrics.render());
    },
  );
}

/** Usage, limits, servers, cache and metrics routes. */
export const usageRoutes: FastifyPluginAsyncTypebox<UsageRoutesOptions> = async (app, options) => {
  userUsageRoute(app, options);
  adminUsageRoute(app, options);
  serverRoutes(app, options);
  userLimitRoutes(app, options);
  metricsRoute(app, options);
};
