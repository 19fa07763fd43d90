import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { principalOf } from "../plugins/auth.js";
import {
  ApiKeyInfo,
  authErrors,
  ErrorEnvelope,
  IdParams,
  Me,
  NullableDateTime,
  Ok,
} from "../schemas.js";
import type { ApiKeyService } from "../services/api-keys.js";
import type { UserService } from "../services/users.js";
import { apiKeyBody, iso, meBody } from "./bodies.js";

export interface UserRoutesOptions {
  users: UserService;
  apiKeys: ApiKeyService;
}

const Password = Type.String({ minLength: 1, maxLength: 256 });
/** The answers of a route that checks the current password (429: too many wrong ones). */
const passwordChecked = { 200: Ok, ...authErrors, 429: ErrorEnvelope };

type App = Parameters<FastifyPluginAsyncTypebox>[0];

const tags = ["user"];

/** The signed-in account: read and update. */
function profileRoutes(app: App, { users }: UserRoutesOptions): void {
  app.get(
    "/api/user",
    {
      // A pending account reads its own status (the web shows "waiting for approval").
      config: { auth: "user", allowPending: true },
      schema: { tags, summary: "The signed-in account", response: { 200: Me, ...authErrors } },
    },
    async (request) => meBody(await users.get(principalOf(request).user.id)),
  );

  app.patch(
    "/api/user",
    {
      config: { auth: "session" },
      schema: {
        tags,
        summary: "Update the profile",
        body: Type.Object(
          { name: Type.String({ minLength: 1, maxLength: 100 }) },
          { additionalProperties: false },
        ),
        response: { 200: Me, ...authErrors },
      },
    },
    async (request) => meBody(await users.rename(principalOf(request).user.id, request.body.name)),
  );
}

/** Password change and account deletion. */
function accountRoutes(app: App, { users }: UserRoutesOptions): void {
  app.post(
    "/api/user/password",
    {
      config: { auth: "session" },
      schema: {
        tags,
        summary: "Change the password (signs out every other session); throttled like sign-in",
        body: Type.Object(
          { currentPassword: Password, newPassword: Password },
          { additionalProperties: false },
        ),
        response: passwordChecked,
      },
    },
    async (request) => {
      const p = principalOf(request);
      const { currentPassword, newPassword } = request.body;
      await users.changePassword(
        p.user.id,
        currentPassword,
        newPassword,
        p.sessionToken,
        request.ip,
      );
      return { ok: true as const };
    },
  );

  app.delete(
    "/api/user",
    {
      config: { auth: "session", allowPending: true },
      schema: {
        tags,
        summary: "Delete the account with its conversations and API keys",
        body: Type.Object({ password: Password }, { additionalProperties: false }),
        response: passwordChecked,
      },
    },
    async (request) => {
      const id = principalOf(request).user.id;
      await users.checkPassword(id, request.body.password, request.ip);
      await users.delete(id);
      return { ok: true as const };
    },
  );
}

/** The caller's API keys: list and create. */
function apiKeyRoutes(app: App, { apiKeys }: UserRoutesOptions): void {
  app.get(
    "/api/user/api-keys",
    {
      config: { auth: "session" },
      schema: {
        tags,
        summary: "List the account's API keys (never the keys themselves)",
        response: { 200: Type.Object({ keys: Type.Array(ApiKeyInfo) }), ...authErrors },
      },
    },
    async (request) => {
      const keys = await apiKeys.list(principalOf(request).user.id);
      return { keys: keys.map(apiKeyBody) };
    },
  );

  app.post(
    "/api/user/api-keys",
    {
      config: { auth: "session" },
      schema: {
        tags,
        summary: "Create an API key; the key is shown only in this answer",
        body: Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: 64 }),
            expiresInDays: Type.Optional(Type.Integer({ minimum: 1, maximum: 3650 })),
          },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object({
            id: Type.String(),
            name: Type.String(),
            key: Type.String(),
            expiresAt: NullableDateTime,
          }),
          ...authErrors,
        },
      },
    },
    async (request, reply) => {
      const { name, expiresInDays } = request.body;
      const created = await apiKeys.create(principalOf(request).user.id, name, expiresInDays);
      reply.header("cache-control", "no-store");
      return reply.code(201).send({ ...created, expiresAt: iso(created.expiresAt) });
    },
  );
}

/** Revoking one of the caller's API keys. */
function apiKeyRevokeRoute(app: App, { apiKeys }: UserRoutesOptions): void {
  app.delete(
    "/api/user/api-keys/:id",
    {
      config: { auth: "session" },
      schema: {
        tags,
        summary: "Revoke an API key",
        params: IdParams,
        response: { 200: Ok, ...authErrors },
      },
    },
    async (request) => {
      await apiKeys.revoke(principalOf(request).user.id, request.params.id);
      return { ok: true as const };
    },
  );
}

/** `/api/user*`: the caller's own account and API keys. */
export const userRoutes: FastifyPluginAsyncTypebox<UserRoutesOptions> = async (app, options) => {
  profileRoutes(app, options);
  accountRoutes(app, options);
  apiKeyRoutes(app, options);
  apiKeyRevokeRoute(app, options);
};
