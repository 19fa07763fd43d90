import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { ErrorEnvelope } from "../schemas.js";
import { type AdminSetup, setupLinkLine } from "../services/admin-setup.js";

export interface SetupRoutesOptions {
  setup: AdminSetup;
  /** Base of the setup page (the web app's origin). */
  webOrigin: string;
  /**
   * The operator's channel (the gateway's stdout, never the log): at start, while no admin
   * exists, one clearly marked line with a fresh setup link goes here. None: no link.
   */
  operatorOut?: { write(line: string): void } | undefined;
}

/** `POST /api/setup`: the first admin account, from the operator's one-time link. */
export const setupRoutes: FastifyPluginAsyncTypebox<SetupRoutesOptions> = async (
  app,
  { setup, webOrigin, operatorOut },
) => {
  if (operatorOut) {
    app.addHook("onReady", async () => {
      const token = await setup.issue();
      if (token) operatorOut.write(setupLinkLine(webOrigin, token));
    });
  }

  app.post(
    "/api/setup",
    {
      config: { auth: "public" },
      schema: {
        tags: ["auth"],
        summary: "Create the first admin account with the one-time setup token",
        body: Type.Object(
          {
            token: Type.String({ minLength: 1, maxLength: 200 }),
            email: Type.String({ format: "email", maxLength: 254 }),
            password: Type.String({ minLength: 1, maxLength: 256 }),
            name: Type.String({ minLength: 1, maxLength: 100 }),
          },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object({
            user: Type.Object({ id: Type.String(), email: Type.String(), role: Type.String() }),
          }),
          400: ErrorEnvelope,
          403: ErrorEnvelope,
          409: ErrorEnvelope,
          "5xx": ErrorEnvelope,
        },
      },
    },
    async (request, reply) => {
      const { token, email, password, name } = request.body;
      const user = await setup.complete({
        token,
        email: email.trim().toLowerCase(),
        password,
        name: name.trim(),
      });
      return reply.code(201).send({ user: { id: user.id, email: user.email, role: user.role } });
    },
  );
};
