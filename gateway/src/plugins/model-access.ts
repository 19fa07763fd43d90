import type { FastifyPluginAsync } from "fastify";
import fp from "fastify-plugin";
import type { Config } from "../config.js";
import { ModelAccess } from "../services/model-access.js";
import { ModelAccessStore } from "../services/model-access-store.js";

declare module "fastify" {
  interface FastifyInstance {
    /** Who may use which model, and per-model daily token limits (services/model-access.ts). */
    modelAccess: ModelAccess;
  }
}

export interface ModelAccessPluginOptions {
  config: Config;
}

/**
 * The model access rules and per-model limits on the database. Every gateway instance keeps
 * them in memory for AUTH_CACHE_TTL_MS (as it does verified API keys and limit overrides):
 * a change made through this instance applies at once, one made elsewhere (another
 * instance, bin/admin) within that time.
 */
const modelAccessPlugin: FastifyPluginAsync<ModelAccessPluginOptions> = async (app, { config }) => {
  app.decorate("modelAccess", new ModelAccess(new ModelAccessStore(app.db), config.authCacheTtlMs));
};

export default fp(modelAccessPlugin, {
  name: "model-access",
  dependencies: ["database"],
  fastify: "5.x",
});
