import { AsyncLocalStorage } from "node:async_hooks";
import { apiKey } from "@better-auth/api-key";
import { type BetterAuthOptions, betterAuth } from "better-auth";
import { admin, bearer, genericOAuth, jwt, twoFactor } from "better-auth/plugins";
import type { Config } from "../config.js";
import type { Database } from "../db/database.js";
import { authHooks, CLIENT_IP_HEADER } from "./guards.js";
import { InvitationStore } from "./invitation-store.js";
import { MailService } from "./mail.js";
import { SettingsService } from "./settings.js";
import { SignupGate } from "./signup-gate.js";
import { LoginThrottle } from "./throttle.js";

export { CLIENT_IP_HEADER } from "./guards.js";
/** Prefix of every API key the gateway issues; lets `/v1` tell keys from tokens. */
export const API_KEY_PREFIX = "llm_";
/** How long better-auth locks second-factor checks after 10 failures (its Retry-After). */
export const TWO_FACTOR_LOCK_SECONDS = 900;
/** Lifetime of the bearer JWTs from `/api/auth/token`. */
export const JWT_LIFETIME = "15m";

type LogFn = (obj: Record<string, unknown>, msg: string) => void;
/** The logger methods better-auth's messages and reset links go to (pino fits). */
export interface AuthLog {
  error: LogFn;
  warn: LogFn;
  debug: LogFn;
}

export interface AuthDeps {
  config: Config;
  db: Database;
  log: AuthLog;
  /** Counts wrong passwords (a fresh one by default); also used by the gateway's own routes. */
  throttle?: LoginThrottle;
  /** Sends reset, verification and invitation mails (from config.mail by default). */
  mail?: MailService;
}

/** What the better-auth instance works with besides its options (see createAuth). */
interface AuthParts {
  throttle: LoginThrottle;
  mail: MailService;
  settings: SettingsService;
  invitations: InvitationStore;
  /** While a call runs inside `resetLinks.run(list, …)`, its reset links go to `list`, not mail. */
  resetLinks: AsyncLocalStorage<string[]>;
}

/**
 * The better-auth instance: email/password, sessions, JWT, 2FA, API keys, admin roles;
 * `throttle` is the brute-force throttle its password checks go through (see guards.ts), and
 * sign-ups follow the sign-up policy (`settings`, `invitations`; see signup-gate.ts).
 */
export function createAuth(deps: AuthDeps) {
  const parts: AuthParts = {
    throttle: deps.throttle ?? new LoginThrottle(),
    mail: deps.mail ?? new MailService(deps.config.mail, deps.log),
    settings: new SettingsService(deps.db, deps.config.signupMode),
    invitations: new InvitationStore(deps.db, deps.config.invitationTtlMs),
    resetLinks: new AsyncLocalStorage<string[]>(),
  };
  return Object.assign(betterAuthFor(deps, parts), parts);
}

function betterAuthFor({ config, db: database, log }: AuthDeps, parts: AuthParts) {
  const { throttle } = parts;
  const gate = new SignupGate(parts.settings, parts.invitations);
  const db = database.kysely;
  return betterAuth({
    appName: "LLM stack",
    baseURL: config.publicUrl,
    basePath: "/api/auth",
    secret: config.authSecret,
    // Derived from PUBLIC_URL (config/origins.ts): both loopback spellings when it is loopback.
    trustedOrigins: config.trustedOrigins,
    // The gateway's Kysely instance, so both share one connection (pool) and one dialect.
    database: { db, type: database.dialect },
    logger: {
      disabled: config.logLevel === "silent",
      log: (level, message) => {
        const fn = level === "error" ? log.error : level === "warn" ? log.warn : log.debug;
        fn.call(log, { component: "better-auth" }, message);
      },
    },
    ...emailOptions(config, parts, log),
    user: {
      // Set by the sign-up policy (approval mode) and cleared by an admin, never by the user.
      additionalFields: {
        pending: { type: "boolean", required: false, defaultValue: false, input: false },
      },
    },
    // Accounts are keyed by (provider, subject); an OAuth sign-in whose email belongs to an
    // existing account is refused, never merged into it.
    account: { accountLinking: { enabled: false } },
    socialProviders: {
      ...(config.oauth.github ? { github: { ...config.oauth.github } } : {}),
      ...(config.oauth.google ? { google: { ...config.oauth.google } } : {}),
    },
    session: { expiresIn: 60 * 60 * 24 * 7, updateAge: 60 * 60 * 24 },
    ...requestPolicy(config),
    hooks: authHooks(throttle, (ctx) => gate.beforeRequest(ctx)),
    databaseHooks: {
      user: {
        create: {
          // Open sign-up (email or OAuth) never makes an admin, first account included: the
          // first admin comes from the operator (setup link or bin/admin; services/admin-setup.ts).
          // The sign-up policy may refuse the account or mark it pending (signup-gate.ts).
          before: async (user, ctx) => ({
            data: { ...user, role: "user", ...(await gate.beforeCreate(user, ctx)) },
          }),
        },
      },
    },
    plugins: [
      admin({ defaultRole: "user", adminRoles: ["admin"] }),
      bearer(),
      jwt({
        jwt: {
          expirationTime: JWT_LIFETIME,
          definePayload: ({ user, session }) => ({
            sid: session.id,
            email: user.email,
            role: (user as { role?: string }).role ?? "user",
          }),
        },
      }),
      twoFactor({
        issuer: "LLM stack",
        // better-auth's own limit on codes (a password is needed first): 5 per challenge,
        // 10 per account, then locked for TWO_FACTOR_LOCK_SECONDS.
        accountLockout: { maxFailedAttempts: 10, durationSeconds: TWO_FACTOR_LOCK_SECONDS },
      }),
      ...(config.oauth.oidc
        ? [
            genericOAuth({
              config: [
                {
                  providerId: "oidc",
                  name: config.oauth.oidc.name,
                  discoveryUrl: `${config.oauth.oidc.issuer}/.well-known/openid-configuration`,
                  clientId: config.oauth.oidc.clientId,
                  clientSecret: config.oauth.oidc.clientSecret,
                  scopes: ["openid", "email", "profile"],
                  pkce: true,
                  requireIdTokenVerification: true,
                },
              ],
            }),
          ]
        : []),
      apiKey({
        defaultPrefix: API_KEY_PREFIX,
        startingCharactersConfig: { shouldStore: true, charactersLength: 10 },
        enableMetadata: false,
        rateLimit: { enabled: false },
        keyExpiration: { defaultExpiresIn: null, maxExpiresIn: 3650 },
      }),
    ],
  });
}

/** Email and password: sign-up, password reset links, email verification. */
function emailOptions(
  config: Config,
  parts: AuthParts,
  log: AuthLog,
): Pick<BetterAuthOptions, "emailAndPassword" | "emailVerification"> {
  const { mail } = parts;
  return {
    emailAndPassword: {
      enabled: true,
      minPasswordLength: 8,
      maxPasswordLength: 256,
      revokeSessionsOnPasswordReset: true,
      requireEmailVerification: config.requireEmailVerification,
      sendResetPassword: async ({ user, url }) => {
        // The link signs in as the user for an hour: it never goes to the log. An admin's
        // request (bin/admin reset-link, the admin page) takes it; anyone else's is mailed,
        // without waiting (the answer is the same whether the account exists or not).
        const capture = parts.resetLinks.getStore();
        if (capture) capture.push(url);
        else if (!mail.configured)
          log.warn({ userId: user.id }, "password reset requested (no mail configured)");
        else void mail.sendPasswordReset(user.email, url);
      },
    },
    emailVerification: {
      sendOnSignUp: config.requireEmailVerification,
      sendOnSignIn: config.requireEmailVerification,
      autoSignInAfterVerification: true,
      sendVerificationEmail: async ({ user, url }) => {
        void mail.sendVerification(user.email, url);
      },
    },
  };
}

/** Cookies, origin and client-address handling, and better-auth's own rate limits. */
function requestPolicy(config: Config): Pick<BetterAuthOptions, "advanced" | "rateLimit"> {
  const relaxed = config.appEnv !== "production";
  return {
    advanced: {
      // Always check Origin against trustedOrigins: better-auth skips it by default whenever
      // NODE_ENV=test, which would leave a gateway started that way open to CSRF (and the tests
      // blind to the origin rules).
      disableOriginCheck: false,
      // Its schema check runs as the instance is created, before setupDatabase migrates, and
      // logs an error-level "schema mismatch" on every first start; setupDatabase migrates and
      // then checks the schema itself (auth/setup.ts).
      database: { validateSchema: false },
      // Served over TLS directly: cookies are Secure even when PUBLIC_URL still says http
      // (otherwise better-auth derives it from PUBLIC_URL being https).
      ...(config.tls ? { useSecureCookies: true } : {}),
      ipAddress: { ipAddressHeaders: [CLIENT_IP_HEADER] },
      defaultCookieAttributes: { httpOnly: true, sameSite: "lax" },
    },
    rateLimit: {
      enabled: !relaxed,
      window: 60,
      max: 300,
      storage: "memory",
      customRules: {
        "/sign-in/email": { window: 60, max: 10 },
        "/sign-up/email": { window: 60, max: 5 },
        "/two-factor/verify-totp": { window: 60, max: 10 },
        "/request-password-reset": { window: 60, max: 3 },
      },
    },
  };
}

export type Auth = ReturnType<typeof createAuth>;
