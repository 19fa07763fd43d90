import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import type { OAuthConfig } from "../config.js";
import { ErrorEnvelope } from "../schemas.js";

export interface AuthProvidersRoutesOptions {
  oauth: OAuthConfig;
}

/** The configured OAuth providers, for sign-in buttons. */
type Provider = { id: string; name: string };

/** Every one signs in with better-auth's `signIn.social({ provider: id })`. */
export function oauthProviders(oauth: OAuthConfig): Provider[] {
  const list: Provider[] = [];
  if (oauth.oidc) list.push({ id: "oidc", name: oauth.oidc.name });
  if (oauth.github) list.push({ id: "github", name: "GitHub" });
  if (oauth.google) list.push({ id: "google", name: "Google" });
  return list;
}

export const authProvidersRoutes: FastifyPluginAsyncTypebox<AuthProvidersRoutesOptions> = async (
  app,
  { oauth },
) => {
  const providers = oauthProviders(oauth);
  app.get(
    "/api/auth-providers",
    {
      schema: {
        tags: ["auth"],
        summary: "OAuth / OpenID Connect providers this gateway offers",
        response: {
          200: Type.Object({
            providers: Type.Array(Type.Object({ id: Type.String(), name: Type.String() })),
          }),
          "5xx": ErrorEnvelope,
        },
      },
    },
    async () => ({ providers }),
  );
};
