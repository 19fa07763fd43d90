import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { notFound } from "../errors.js";
import { principalOf } from "../plugins/auth.js";
import { ApiKeyInfo, authErrors, IdParams } from "../schemas.js";
import type { ApiKeyService } from "../services/api-keys.js";
import { type LimitService, NO_OVERRIDES } from "../services/limits.js";
import type { UserService } from "../services/users.js";
import { apiKeyBody } from "./bodies.js";
import { LimitsObj, Overrides, overridesBody } from "./usage.js";

export interface KeyLimitRoutesOptions {
  limits: LimitService;
  apiKeys: ApiKeyService;
  users: UserService;
}

const AdminKey = Type.Object({ ...ApiKeyInfo.properties, limits: Overrides });

const KeyLimits = Type.Object({
  apiKeyId: Type.String(),
  userId: Type.String(),
  overrides: Overrides,
  ownerOverrides: Overrides,
  effective: LimitsObj,
  usage: Type.Object({
    requestsThisMinute: Type.Integer(),
    tokensToday: Type.Integer(),
    concurrent: Type.Integer(),
  }),
});

/** Only these four fields are read; anything else in the body is a 400. */
const KeyLimitsBody = overridesBody(
  "null or left out = none of the key's own (its user's limits still apply)",
);
/** An API key by id, or 404. */
async function keyOr404(apiKeys: ApiKeyService, id: string) {
  const key = await apiKeys.find(id);
  if (!key) throw notFound("API key");
  return key;
}

/** The caller's own key, or 404 (another user's key looks like no key at all). */
async function ownKeyOr404(apiKeys: ApiKeyService, id: string, userId: string) {
  const key = await apiKeys.find(id);
  if (!key || key.userId !== userId) throw notFound("API key");
  return key;
}

type App = Parameters<FastifyPluginAsyncTypebox>[0];

const tags = ["admin"];

/** A user's API keys with their own limits (admins). */
function userKeysRoute(app: App, { limits, apiKeys, users }: KeyLimitRoutesOptions): void {
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
        keys: await Promise.all(
          keys.map(async (k) => ({
            ...apiKeyBody(k),
            limits: await limits.describeKeyOverrides(k.id),
          })),
        ),
      };
    },
  );
}

/** An admin's limits on one API key. */
function adminKeyLimitRoutes(app: App, { limits, apiKeys }: KeyLimitRoutesOptions): void {
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
      const key = await keyOr404(apiKeys, request.params.id);
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
      const key = await keyOr404(apiKeys, request.params.id);
      // The owner comes from the key itself, never from the request.
      await limits.setOverrides(key.userId, `key:${key.id}`, { ...NO_OVERRIDES, ...request.body });
      return limits.describeKey(key.id, key.userId);
    },
  );
}

/** The owner's own, tighter limits on one of their keys. */
function ownKeyLimitRoutes(app: App, { limits, apiKeys }: KeyLimitRoutesOptions): void {
  app.get(
    "/api/user/api-keys/:id/limits",
    {
      config: { auth: "session" },
      schema: {
        tags: ["user"],
        summary: "One of your API keys: its own limits (yours and an admin's) and counters",
        params: IdParams,
        response: { 200: KeyLimits, ...authErrors },
      },
    },
    async (request) => {
      const key = await ownKeyOr404(apiKeys, request.params.id, principalOf(request).user.id);
      return limits.describeKey(key.id, key.userId);
    },
  );

  app.put(
    "/api/user/api-keys/:id/limits",
    {
      config: { auth: "session" },
      schema: {
        tags: ["user"],
        summary:
          "Replace your own limits on one of your API keys (they only add to an admin's and your account's)",
        params: IdParams,
        body: KeyLimitsBody,
        response: { 200: KeyLimits, ...authErrors },
      },
    },
    async (request) => {
      const key = await ownKeyOr404(apiKeys, request.params.id, principalOf(request).user.id);
      await limits.setOverrides(key.userId, `keyown:${key.id}`, {
        ...NO_OVERRIDES,
        ...request.body,
      });
      return limits.describeKey(key.id, key.userId);
    },
  );
}

/**
 * An API key's own limits, checked on top of its user's (each with its own counters; the
 * tighter one refuses): admins set them (`/api/admin/api-keys/:id/limits`), and a key's
 * owner may add tighter ones of their own (`/api/user/api-keys/:id/limits`) — the key is
 * held by the tighter of both, so an owner can never loosen what an admin set.
 */
export const keyLimitRoutes: FastifyPluginAsyncTypebox<KeyLimitRoutesOptions> = async (
  app,
  options,
) => {
  userKeysRoute(app, options);
  adminKeyLimitRoutes(app, options);
  ownKeyLimitRoutes(app, options);
};
