import type { FastifyPluginAsync } from "fastify";
import fp from "fastify-plugin";
import type { Config } from "../config.js";
import { AdminSetup } from "../services/admin-setup.js";
import { ApiKeyService } from "../services/api-keys.js";
import { InvitationService } from "../services/invitations.js";
import { UserService } from "../services/users.js";

/** The account services the user, admin, invitation and setup routes use. */
export interface AccountServices {
  users: UserService;
  apiKeys: ApiKeyService;
  invitations: InvitationService;
  /** The first admin's one-time setup link. */
  setup: AdminSetup;
}

declare module "fastify" {
  interface FastifyInstance {
    accounts: AccountServices;
  }
}

export interface AccountsPluginOptions {
  config: Config;
}

/**
 * Users, API keys, invitations and the first admin's setup on better-auth; every change they
 * make to access clears the key cache and checks the calls in flight again.
 */
const accountsPlugin: FastifyPluginAsync<AccountsPluginOptions> = async (app, { config }) => {
  const { auth, db, authChanged } = app;
  const users = new UserService(auth, db, authChanged);
  app.addHook("onClose", async () => auth.mail.close());
  app.decorate("accounts", {
    users,
    apiKeys: new ApiKeyService(auth, db, authChanged),
    invitations: new InvitationService(auth, auth.invitations, users, auth.mail, config.publicUrl),
    setup: new AdminSetup(auth, db, users),
  });
};

export default fp(accountsPlugin, {
  name: "accounts",
  dependencies: ["database", "calls"],
  fastify: "5.x",
});
