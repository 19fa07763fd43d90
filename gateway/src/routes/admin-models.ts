import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { catalogModels } from "../models/catalog.js";
import type { ModelRouter } from "../models/router.js";
import { authErrors } from "../schemas.js";
import { DAY_MS } from "../services/limit-store.js";
import { PrefixCache } from "../services/prefix-cache.js";
import type { UsageService } from "../services/usage.js";

export interface AdminModelsRoutesOptions {
  router: ModelRouter;
  usage: UsageService;
  now?: () => number;
}

const AdminModel = Type.Object({
  id: Type.String(),
  aliases: Type.Array(Type.String()),
  kind: Type.Optional(Type.Union([Type.Literal("base"), Type.Literal("chat")])),
  state: Type.Union([
    Type.Literal("ready"),
    Type.Literal("loading"),
    Type.Literal("unloaded"),
    Type.Literal("down"),
  ]),
  default: Type.Boolean(),
  fallbacks: Type.Array(Type.String()),
  upstreams: Type.Array(
    Type.Object({
      kind: Type.Union([Type.Literal("llm-server"), Type.Literal("openai")]),
      // The base URL as configured, never with credentials (the routing file refuses them).
      url: Type.String(),
      model: Type.String(),
      weight: Type.Integer(),
      state: Type.Union([Type.Literal("up"), Type.Literal("down"), Type.Literal("ejected")]),
      prefix_cache: Type.Optional(PrefixCache),
    }),
  ),
  usage: Type.Object({ requests_today: Type.Integer(), tokens_today: Type.Integer() }),
});

/**
 * `GET /api/admin/models`: every model with its aliases, fallbacks, upstreams (kind, URL,
 * model name, weight, state, an llm-server's prefix caches) and its usage since 00:00 UTC. Admins only; no key is ever in it.
 */
export const adminModelRoutes: FastifyPluginAsyncTypebox<AdminModelsRoutesOptions> = async (
  app,
  { router, usage, now = Date.now },
) => {
  app.get(
    "/api/admin/models",
    {
      config: { auth: "admin" },
      schema: {
        tags: ["admin"],
        summary: "Models with their upstreams, state and usage today",
        response: { 200: Type.Object({ models: Type.Array(AdminModel) }), ...authErrors },
      },
    },
    async () => {
      const today = Math.floor(now() / DAY_MS) * DAY_MS;
      const [models, used] = await Promise.all([catalogModels(router), usage.byModelSince(today)]);
      return {
        models: models.map((m) => {
          const u = used.get(m.id);
          return {
            ...m,
            usage: { requests_today: u?.requests ?? 0, tokens_today: u?.tokens ?? 0 },
          };
        }),
      };
    },
  );
};
