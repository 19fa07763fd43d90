import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { notFound } from "../errors.js";
import type { ApiKeyService } from "../services/api-keys.js";
import type { LimitService } from "../services/limits.js";
import type { UserService } from "../services/users.js";
import { authErrors, DateTime, IdParams, NullableDateTime } from "./schemas.js";
import { LimitsObj, Override, Overrides } from "./usage.js";

export interface KeyLimitRoutesOptions {
  limits: LimitService;
  apiKeys: ApiKeyService;
  users: UserService;
}

const AdminKey = Type.Object({
  id: Type.String(),
  name: Type.Union([Type.String(), Type.Null()]),
  start: Type.Union([Type.String(), Type.Null()]),
  createdAt: DateTime,
  expiresAt: NullableDateTime,
  lastUsedAt: NullableDateTime,
  limits: Overrides,
});
const iso = (d: Date | null) => (d ? d.toISOString() : null);

const KeyLimits = Type.Object({
  apiKeyId: Type.String(),
  userId: Type.String(),
  overrides: Overrides,
  effective: LimitsObj,
  usage: Type.Object({
    requestsThisMinute: Type.Integer(),
    tokensToday: Type.Integer(),
    concurrent: Type.Integer(),
  }),
});

/** Only these four fields are read; anything else in the body is a 400. */
const KeyLimitsBody = Type.Object(
  {
    requestsPerMinute: Type.Optional(Override),
    tokensPerDay: Type.Optional(Override),
    concurrentStreams: Type.Optional(Override),
    maxTokens: Type.Optional(Override),
  },
  { additionalProperties: false },
);

/**
 * `/api/admin/api-keys/:id/limits`: an API key's own limits, checked on top of its
 * user's (each with its own counters; the tighter one refuses).
 */
export const keyLimitRoutes: FastifyPluginAsyncTypebox<KeyLimitRoutesOptions> = async (
  app,
  { limits, apiKeys, users },
) => {
  const tags = ["admin"];
  const keyOr404 = async (id: string) => {
    const key = await apiKeys.find(id);
    if (!key) throw notFound("API key");
    return key;
  };

  app.get(
    "/api/admin/users/:id/api-keys",
    {
      config: { auth: "admin" },
      schema: {
        tags,
        summary: "A user's API keys (never the keys themselves) with each key's own limits",
        params: IdParams,
        response: { 200: Type.Object({ keys: Type.Array(AdminKey) }), ...authErrors },
      },
    },
    async (request) => {
      const user = await users.get(request.params.id);
      const keys = await apiKeys.list(user.id);
      return {
        keys: keys.map((k) => ({
          ...k,
          createdAt: k.createdAt.toISOString(),
          expiresAt: iso(k.expiresAt),
          lastUsedAt: iso(k.lastUsedAt),
          limits: limits.describeKeyOverrides(k.id),
        })),
      };
    },
  );

  app.get(
    "/api/admin/api-keys/:id/limits",
    {
      config: { auth: "admin" },
      schema: {
        tags,
        summary: "An API key's own limits and its counters now",
        params: IdParams,
        response: { 200: KeyLimits, ...authErrors },
      },
    },
    async (request) => {
      const key = await keyOr404(request.params.id);
      return limits.describeKey(key.id, key.userId);
    },
  );

  app.put(
    "/api/admin/api-keys/:id/limits",
    {
      config: { auth: "admin" },
      schema: {
        tags,
        summary:
          "Replace an API key's own limits (absent or null = none of its own, 0 = no limit); its user's limits still apply",
        params: IdParams,
        body: KeyLimitsBody,
        response: { 200: KeyLimits, ...authErrors },
      },
    },
    async (request) => {
      const key = await keyOr404(request.params.id);
      const b = request.body;
      // PUT replaces: a field left out clears that key-level limit. The owner comes from
      // the key itself, never from the request.
      await limits.setOverrides(key.userId, `key:${key.id}`, {
        requestsPerMinute: b.requestsPerMinute ?? null,
        tokensPerDay: b.tokensPerDay ?? null,
        concurrentStreams: b.concurrentStreams ?? null,
        maxTokens: b.maxTokens ?? null,
      });
      return limits.describeKey(key.id, key.userId);
    },
  );
};
