import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import type { Auth } from "../auth/auth.js";
import { principalOf } from "../plugins/auth.js";
import {
  AdminUser,
  authErrors,
  DateTime,
  ErrorEnvelope,
  IdParams,
  paging,
  Role,
} from "../schemas.js";
import type { Invitation, InvitationService } from "../services/invitations.js";
import { issueResetLink } from "../services/reset-link.js";
import type { UserService } from "../services/users.js";
import { adminUserBody, iso } from "./bodies.js";

export interface InvitationRoutesOptions {
  auth: Auth;
  invitations: InvitationService;
  users: UserService;
  /** Where people open the app (PUBLIC_URL): reset links lead to its /reset-password page. */
  publicUrl: string;
}

const SignupMode = Type.Union([
  Type.Literal("open"),
  Type.Literal("approval"),
  Type.Literal("invite"),
  Type.Literal("closed"),
]);
const Email = Type.String({ format: "email", maxLength: 254 });
const Token = Type.String({ minLength: 1, maxLength: 200 });

const InvitationBody = Type.Object(
  {
    id: Type.String(),
    email: Type.String(),
    role: Role,
    status: Type.Union([
      Type.Literal("pending"),
      Type.Literal("used"),
      Type.Literal("expired"),
      Type.Literal("revoked"),
    ]),
    createdAt: DateTime,
    expiresAt: DateTime,
    usedAt: Type.Union([DateTime, Type.Null()]),
    revokedAt: Type.Union([DateTime, Type.Null()]),
  },
  { title: "Invitation" },
);

const MailOutcomeBody = Type.Object({
  sent: Type.Boolean(),
  reason: Type.Optional(Type.String()),
  error: Type.Optional(Type.String()),
});

const MailStatusBody = Type.Object({
  configured: Type.Boolean(),
  sent: Type.Integer(),
  failed: Type.Integer(),
  lastFailure: Type.Union([
    Type.Object({ at: DateTime, kind: Type.String(), error: Type.String() }),
    Type.Null(),
  ]),
});

const invitationBody = (i: Invitation) => ({
  id: i.id,
  email: i.email,
  role: i.role,
  status: i.status,
  createdAt: i.createdAt.toISOString(),
  expiresAt: i.expiresAt.toISOString(),
  usedAt: iso(i.usedAt),
  revokedAt: iso(i.revokedAt),
});

const publicErrors = {
  400: ErrorEnvelope,
  403: ErrorEnvelope,
  409: ErrorEnvelope,
  "5xx": ErrorEnvelope,
};

type App = Parameters<FastifyPluginAsyncTypebox>[0];

const tags = ["admin"];

/** Sign-up with the current policy, and what an invitation link holds. */
function signupRoutes(app: App, { auth }: InvitationRoutesOptions): void {
  app.get(
    "/api/signup",
    {
      config: { auth: "public" },
      schema: {
        tags: ["auth"],
        summary: "Who may create an account here (open, approval, invite, closed)",
        response: {
          200: Type.Object({ mode: SignupMode, emailVerification: Type.Boolean() }),
          "5xx": ErrorEnvelope,
        },
      },
    },
    async () => ({
      mode: await auth.settings.signupMode(),
      emailVerification: auth.options.emailAndPassword?.requireEmailVerification === true,
    }),
  );

  app.post(
    "/api/invitations/inspect",
    {
      config: { auth: "public" },
      schema: {
        tags: ["auth"],
        summary: "The invitation behind a link (its email), 403 when it cannot be used",
        // A POST, so the token is never in a URL that a log could keep.
        body: Type.Object({ token: Token }, { additionalProperties: false }),
        response: {
          200: Type.Object({ email: Type.String(), role: Role, expiresAt: DateTime }),
          ...publicErrors,
        },
      },
    },
    async (request) => {
      const i = await auth.invitations.find(request.body.token);
      return { email: i.email, role: i.role, expiresAt: i.expiresAt.toISOString() };
    },
  );
}

/** Accepting an invitation: the account it creates. */
function acceptRoute(app: App, { invitations }: InvitationRoutesOptions): void {
  app.post(
    "/api/invitations/accept",
    {
      config: { auth: "public" },
      schema: {
        tags: ["auth"],
        summary: "Create the invited account (then sign in with its email and password)",
        body: Type.Object(
          {
            token: Token,
            name: Type.String({ minLength: 1, maxLength: 100 }),
            password: Type.String({ minLength: 1, maxLength: 256 }),
            email: Type.Optional(Email),
          },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object({
            user: Type.Object({ id: Type.String(), email: Type.String(), role: Role }),
          }),
          ...publicErrors,
        },
      },
    },
    async (request, reply) => {
      const { token, name, password, email } = request.body;
      const user = await invitations.accept({ token, name: name.trim(), password, email });
      return reply.code(201).send({ user: { id: user.id, email: user.email, role: user.role } });
    },
  );
}

/** The sign-up policy an admin sets. */
function settingsRoutes(app: App, { auth }: InvitationRoutesOptions): void {
  app.get(
    "/api/admin/settings",
    {
      config: { auth: "admin" },
      schema: {
        tags,
        summary: "Sign-up policy (with the SIGNUP_MODE default) and mail delivery",
        response: {
          200: Type.Object({
            signupMode: SignupMode,
            signupModeDefault: SignupMode,
            mail: MailStatusBody,
          }),
          ...authErrors,
        },
      },
    },
    async () => ({
      signupMode: await auth.settings.signupMode(),
      signupModeDefault: auth.settings.signupModeDefault,
      mail: auth.mail.status(),
    }),
  );

  app.patch(
    "/api/admin/settings",
    {
      config: { auth: "admin" },
      schema: {
        tags,
        summary: "Change the sign-up policy (stored; wins over SIGNUP_MODE)",
        body: Type.Object({ signupMode: SignupMode }, { additionalProperties: false }),
        response: { 200: Type.Object({ signupMode: SignupMode }), ...authErrors },
      },
    },
    async (request) => {
      await auth.settings.setSignupMode(request.body.signupMode);
      return { signupMode: await auth.settings.signupMode() };
    },
  );
}

/** An admin lists and creates invitations. */
function invitationListRoutes(app: App, { auth, invitations }: InvitationRoutesOptions): void {
  app.get(
    "/api/admin/invitations",
    {
      config: { auth: "admin" },
      schema: {
        tags,
        summary: "Invitations, newest first",
        querystring: Type.Object({ ...paging(500, 100) }, { additionalProperties: false }),
        response: {
          200: Type.Object({ invitations: Type.Array(InvitationBody) }),
          ...authErrors,
        },
      },
    },
    async (request) => {
      const { limit, offset } = request.query;
      return { invitations: (await auth.invitations.list(limit, offset)).map(invitationBody) };
    },
  );

  app.post(
    "/api/admin/invitations",
    {
      config: { auth: "admin" },
      schema: {
        tags,
        summary: "Invite an email address (mailed; the link is returned when it was not)",
        body: Type.Object(
          { email: Email, role: Type.Optional(Role) },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object({
            invitation: InvitationBody,
            link: Type.Optional(Type.String()),
            mail: MailOutcomeBody,
          }),
          409: ErrorEnvelope,
          ...authErrors,
        },
      },
    },
    async (request, reply) => {
      const { email, role = "user" } = request.body;
      const sent = await invitations.invite(email, role, principalOf(request).user);
      return reply.code(201).send({
        invitation: invitationBody(sent.invitation),
        ...(sent.link ? { link: sent.link } : {}),
        mail: sent.mail,
      });
    },
  );
}

/** Revoking an invitation, approving a pending account. */
function revokeAndApproveRoutes(app: App, { auth, users }: InvitationRoutesOptions): void {
  app.delete(
    "/api/admin/invitations/:id",
    {
      config: { auth: "admin" },
      schema: {
        tags,
        summary: "Revoke an unused invitation (409 once used)",
        params: IdParams,
        response: { 200: InvitationBody, 409: ErrorEnvelope, ...authErrors },
      },
    },
    async (request) => invitationBody(await auth.invitations.revoke(request.params.id)),
  );

  app.post(
    "/api/admin/users/:id/approve",
    {
      config: { auth: "admin" },
      schema: {
        tags,
        summary: "Let a pending account in",
        params: IdParams,
        response: { 200: AdminUser, ...authErrors },
      },
    },
    async (request) => adminUserBody(await users.approve(request.params.id)),
  );
}

/** An admin hands out a password reset link. */
function resetLinkRoute(app: App, { auth, users, publicUrl }: InvitationRoutesOptions): void {
  app.post(
    "/api/admin/users/:id/reset-link",
    {
      config: { auth: "admin" },
      schema: {
        tags,
        summary: "A one-hour password-reset link for the user (not mailed: hand it over)",
        params: IdParams,
        response: {
          200: Type.Object({ link: Type.String(), expiresInSeconds: Type.Integer() }),
          ...authErrors,
        },
      },
    },
    async (request) => {
      const user = await users.get(request.params.id);
      const link = await issueResetLink(auth, user.email, publicUrl);
      return { link, expiresInSeconds: 3600 };
    },
  );
}

/**
 * Sign-up policy and invitations: the admin's settings, invitations, approvals and links
 * (`/api/admin/…`), and the public side: the policy in force and accepting an invitation.
 */
export const invitationRoutes: FastifyPluginAsyncTypebox<InvitationRoutesOptions> = async (
  app,
  options,
) => {
  signupRoutes(app, options);
  acceptRoute(app, options);
  settingsRoutes(app, options);
  invitationListRoutes(app, options);
  revokeAndApproveRoutes(app, options);
  resetLinkRoute(app, options);
};
