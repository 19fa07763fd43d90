import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { type Static, Type } from "typebox";
import { badRequest, notFound } from "../errors.js";
import { authErrors, IdParams, Ok, Role } from "../schemas.js";
import type { ModelAccess } from "../services/model-access.js";
import {
  MAX_MODEL_NAME,
  MAX_MODEL_TOKENS_PER_DAY,
  type ModelEntry,
  type ModelSubject,
} from "../services/model-access-store.js";
import type { UserService } from "../services/users.js";

export interface ModelAccessRoutesOptions {
  modelAccess: ModelAccess;
  users: UserService;
  /** Told after a rule changed: the calls in flight are checked again (a deny ends some). */
  rulesChanged: () => void;
}

/** No control characters (PostgreSQL refuses NUL in text): a printable name, not blank. */
const PRINTABLE = "^[^\\u0000-\\u001F\\u007F]*$";
const ModelName = Type.String({
  minLength: 1,
  maxLength: MAX_MODEL_NAME,
  // Linear: spaces, then a printable non-space, then printable characters.
  pattern: "^ *[^\\s\\u0000-\\u001F\\u007F][^\\u0000-\\u001F\\u007F]*$",
  description: "The public model name (what clients send as `model`); matched without case",
});
const SubjectFields = {
  model: ModelName,
  role: Type.Optional(Role),
  email: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 320,
      pattern: PRINTABLE,
      description: "One user, by email",
    }),
  ),
};
const subjectNote = "Give either `role` (every user of that role) or `email` (one user).";
const RuleBody = Type.Object(
  { ...SubjectFields, allow: Type.Boolean() },
  { additionalProperties: false, description: subjectNote },
);
const LimitBody = Type.Object(
  {
    ...SubjectFields,
    tokens_per_day: Type.Integer({
      minimum: 0,
      maximum: MAX_MODEL_TOKENS_PER_DAY,
      description: "Tokens a day of this model per user (0 = no limit of this model)",
    }),
  },
  { additionalProperties: false, description: subjectNote },
);
const EntryFields = {
  id: Type.String(),
  model: Type.String(),
  role: Type.Optional(Role),
  user_id: Type.Optional(Type.String()),
  email: Type.Optional(Type.String()),
};
const Rule = Type.Object({ ...EntryFields, allow: Type.Boolean() }, { title: "ModelRule" });
const Limit = Type.Object(
  { ...EntryFields, tokens_per_day: Type.Integer() },
  { title: "ModelLimit" },
);

/** A stored rule or limit as the API shows it (snake_case, absent rather than null). */
function entryBody<V>(e: ModelEntry<V>) {
  return {
    id: e.id,
    model: e.model,
    ...(e.role ? { role: e.role } : {}),
    ...(e.userId ? { user_id: e.userId } : {}),
    ...(e.email ? { email: e.email } : {}),
  };
}

/** The role or user a body names; exactly one of both, an existing user. */
async function subjectOf(
  users: UserService,
  body: { role?: Role | undefined; email?: string | undefined },
): Promise<{ subject: ModelSubject; shown: { role?: Role; user_id?: string; email?: string } }> {
  if (body.role !== undefined && body.email !== undefined) {
    throw badRequest("Give either role or email, not both");
  }
  if (body.role !== undefined) return { subject: { role: body.role }, shown: { role: body.role } };
  if (body.email === undefined) throw badRequest("Give a role or the email of one user");
  const user = await users.findByEmail(body.email.trim());
  if (!user) throw badRequest(`No user with email ${body.email.trim()}`, "UNKNOWN_USER");
  return { subject: { userId: user.id }, shown: { user_id: user.id, email: user.email } };
}

type App = Parameters<FastifyPluginAsyncTypebox>[0];
const tags = ["admin"];

function listRoute(app: App, { modelAccess }: ModelAccessRoutesOptions): void {
  app.get(
    "/api/admin/model-access",
    {
      config: { auth: "admin" },
      schema: {
        tags,
        summary: "Every model access rule and per-model daily token limit",
        response: {
          200: Type.Object({ rules: Type.Array(Rule), limits: Type.Array(Limit) }),
          ...authErrors,
        },
      },
    },
    async () => {
      const { rules, limits } = await modelAccess.list();
      return {
        rules: rules.map((r) => ({ ...entryBody(r), allow: r.value })),
        limits: limits.map((l) => ({ ...entryBody(l), tokens_per_day: l.value })),
      };
    },
  );
}

/** `DELETE url` of one rule or limit by id (404 when there is none). */
function deleteRoute(
  app: App,
  url: string,
  what: string,
  remove: (id: string) => Promise<boolean>,
): void {
  app.delete(
    url,
    {
      config: { auth: "admin" },
      schema: {
        tags,
        summary: `Delete a ${what.toLowerCase()}`,
        params: IdParams,
        response: { 200: Ok, ...authErrors },
      },
    },
    async (request) => {
      if (!(await remove(request.params.id))) throw notFound(what);
      return { ok: true as const };
    },
  );
}

function ruleRoutes(
  app: App,
  { modelAccess, users, rulesChanged }: ModelAccessRoutesOptions,
): void {
  app.post(
    "/api/admin/model-access",
    {
      config: { auth: "admin" },
      schema: {
        tags,
        summary:
          "Allow or deny a model to a role or one user (replaces their rule for it). A user's rule beats their role's; a model without rules is open to everyone",
        body: RuleBody,
        response: { 200: Rule, ...authErrors },
      },
    },
    async (request) => {
      const body: Static<typeof RuleBody> = request.body;
      const { subject, shown } = await subjectOf(users, body);
      const id = await modelAccess.setRule(body.model, subject, body.allow);
      if (!body.allow) rulesChanged();
      return { id, model: body.model.trim(), ...shown, allow: body.allow };
    },
  );

  // Deleting an allow may leave a role's deny in force.
  deleteRoute(app, "/api/admin/model-access/:id", "Model access rule", async (id) => {
    const deleted = await modelAccess.deleteRule(id);
    if (deleted) rulesChanged();
    return deleted;
  });
}

function limitRoutes(app: App, { modelAccess, users }: ModelAccessRoutesOptions): void {
  app.post(
    "/api/admin/model-limits",
    {
      config: { auth: "admin" },
      schema: {
        tags,
        summary:
          "Set a role's (each of its users) or one user's daily tokens of a model, on top of their total quota (replaces their limit for it; a user's beats their role's)",
        body: LimitBody,
        response: { 200: Limit, ...authErrors },
      },
    },
    async (request) => {
      const body: Static<typeof LimitBody> = request.body;
      const { subject, shown } = await subjectOf(users, body);
      const id = await modelAccess.setLimit(body.model, subject, body.tokens_per_day);
      return { id, model: body.model.trim(), ...shown, tokens_per_day: body.tokens_per_day };
    },
  );

  deleteRoute(app, "/api/admin/model-limits/:id", "Model limit", (id) =>
    modelAccess.deleteLimit(id),
  );
}

/**
 * `/api/admin/model-access` and `/api/admin/model-limits`: who may use which model, and
 * per-model daily token limits (admins only).
 */
export const modelAccessRoutes: FastifyPluginAsyncTypebox<ModelAccessRoutesOptions> = async (
  app,
  options,
) => {
  listRoute(app, options);
  ruleRoutes(app, options);
  limitRoutes(app, options);
};
