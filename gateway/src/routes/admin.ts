import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { forbidden } from "../errors.js";
import { principalOf } from "../plugins/auth.js";
import { AdminUser, authErrors, IdParams, Ok, paging, Role } from "../schemas.js";
import type { UserService } from "../services/users.js";
import { adminUserBody } from "./bodies.js";

export interface AdminRoutesOptions {
  users: UserService;
}

type App = Parameters<FastifyPluginAsyncTypebox>[0];

const tags = ["admin"];

/** Lists and searches users. */
function listUsersRoute(app: App, { users }: AdminRoutesOptions): void {
  app.get(
    "/api/admin/users",
    {
      config: { auth: "admin" },
      schema: {
        tags,
        summary: "List and search accounts (email or name contains q), newest first",
        querystring: Type.Object(
          {
            q: Type.Optional(Type.String({ maxLength: 200 })),
            ...paging(500, 100),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ users: Type.Array(AdminUser) }), ...authErrors },
      },
    },
    async (request) => {
      const { q, limit, offset } = request.query;
      return { users: (await users.list(q, limit, offset)).map(adminUserBody) };
    },
  );
}

/** Changes or deletes one user. */
function userAdminRoutes(app: App, { users }: AdminRoutesOptions): void {
  app.patch(
    "/api/admin/users/:id",
    {
      config: { auth: "admin" },
      schema: {
        tags,
        summary: "Set role or disable/enable (either signs the user out everywhere)",
        params: IdParams,
        body: Type.Object(
          { role: Type.Optional(Role), disabled: Type.Optional(Type.Boolean()) },
          { additionalProperties: false, minProperties: 1 },
        ),
        response: { 200: AdminUser, ...authErrors },
      },
    },
    async (request) => {
      if (request.params.id === principalOf(request).user.id) {
        throw forbidden("Admins cannot change their own role or disable themselves");
      }
      const { role, disabled } = request.body;
      const updated = await users.update(request.params.id, {
        ...(role !== undefined ? { role } : {}),
        ...(disabled !== undefined ? { disabled } : {}),
      });
      return adminUserBody(updated);
    },
  );

  app.delete(
    "/api/admin/users/:id",
    {
      config: { auth: "admin" },
      schema: {
        tags,
        summary: "Delete an account with all its data",
        params: IdParams,
        response: { 200: Ok, ...authErrors },
      },
    },
    async (request) => {
      if (request.params.id === principalOf(request).user.id) {
        throw forbidden("Delete your own account from /api/user");
      }
      await users.get(request.params.id);
      await users.delete(request.params.id);
      return { ok: true as const };
    },
  );
}

/** `/api/admin/*`: user management, admins only. */
export const adminRoutes: FastifyPluginAsyncTypebox<AdminRoutesOptions> = async (app, options) => {
  listUsersRoute(app, options);
  userAdminRoutes(app, options);
};
