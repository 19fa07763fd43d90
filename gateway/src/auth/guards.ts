import { APIError, createAuthMiddleware, getSessionFromCtx } from "better-auth/api";
import type { LoginThrottle, Refusal } from "./throttle.js";

export { TOO_MANY_ATTEMPTS } from "./throttle.js";

/** Header the gateway sets (from Fastify's `request.ip`) for better-auth and these guards. */
export const CLIENT_IP_HEADER = "x-gateway-client-ip";

/**
 * better-auth endpoints that check a password, and where their account comes from: the
 * body's `email` (sign-in) or the caller's session. Keyed by the endpoint's own path, which
 * is what a hook sees whatever spelling the request used (`/./`, `%2e`, absolute-form…).
 */
const PASSWORD_CHECKS: Record<string, "email" | "session"> = {
  "/sign-in/email": "email",
  "/change-password": "session",
  "/verify-password": "session",
  "/delete-user": "session",
  "/two-factor/enable": "session",
  "/two-factor/disable": "session",
  "/two-factor/get-totp-uri": "session",
  "/two-factor/generate-backup-codes": "session",
};

/** better-auth's answers to a wrong password. */
const WRONG_PASSWORD = new Set(["INVALID_EMAIL_OR_PASSWORD", "INVALID_PASSWORD"]);

/**
 * better-auth endpoints that would go around the gateway's own rules; they answer 404.
 * `/admin/*` (set-role, set-user-password, impersonate-user, remove-user, ban-user,
 * create-user, list-users…) skips the admin 2FA requirement and the no-self-demotion rule
 * of `/api/admin`, and impersonation reads any user's conversations; `/delete-user` leaves
 * conversations and keys behind (`DELETE /api/user` deletes them). The gateway's own
 * `/api/admin/*` and `/api/user` do these jobs under its rules.
 */
export function isBlockedAuthPath(path: string): boolean {
  return path.startsWith("/admin/") || path === "/delete-user" || path.startsWith("/delete-user/");
}

/** The account a password check is about, lower-cased ("" when the request names none). */
async function accountOf(
  ctx: Parameters<Parameters<typeof createAuthMiddleware>[0]>[0],
  source: "email" | "session",
): Promise<string> {
  if (source === "email") {
    const email = (ctx.body as { email?: unknown } | undefined)?.email;
    return typeof email === "string" ? email.trim().toLowerCase() : "";
  }
  const session = await getSessionFromCtx(ctx);
  return session?.user.email.toLowerCase() ?? "";
}

/** better-auth's and better-call's APIError alike (the latter from body validation). */
function isApiError(value: unknown): value is { statusCode: number; body?: { code?: unknown } } {
  return value instanceof Error && "statusCode" in value;
}

/** The throttle's refusal as better-auth's error (its handler sends status, body, headers). */
function refusalError(r: Refusal): APIError {
  const status = r.status === 429 ? "TOO_MANY_REQUESTS" : "SERVICE_UNAVAILABLE";
  return new APIError(status, { code: r.code, message: r.message }, r.headers);
}

/**
 * better-auth's `hooks`: refuse the blocked endpoints (404), end the other sessions on every
 * password change, and put every password check through `throttle` (429 with Retry-After
 * before the check while delayed, 503 while its store is unreachable; failures and
 * successes counted after it). Calls made
 * inside the gateway (`auth.api.*` without the client-IP header) are not throttled.
 */
export function authHooks(
  throttle: LoginThrottle,
  /** Runs first on every outside request (the sign-up policy's check). */
  gate: (
    ctx: Parameters<Parameters<typeof createAuthMiddleware>[0]>[0],
  ) => Promise<void> = async () => {},
) {
  /** What the before hook found, for the after hook of the same request. */
  const pending = new WeakMap<object, { account: string; ip: string }>();
  return {
    before: createAuthMiddleware(async (ctx) => {
      const ip = ctx.headers?.get(CLIENT_IP_HEADER);
      if (!ip) return;
      if (isBlockedAuthPath(ctx.path)) {
        throw new APIError("NOT_FOUND", { code: "NOT_FOUND", message: "Not found" });
      }
      await gate(ctx);
      const source = PASSWORD_CHECKS[ctx.path];
      if (source) {
        const account = await accountOf(ctx, source);
        const refused = await throttle.refusal(account, ip);
        if (refused) throw refusalError(refused);
        pending.set(ctx.context, { account, ip });
      }
      if (ctx.path === "/change-password") {
        // A new password ends every other session, as POST /api/user/password does.
        const body = ctx.body as Record<string, unknown> | undefined;
        return { context: { body: { ...body, revokeOtherSessions: true } } };
      }
      return;
    }),
    after: createAuthMiddleware(async (ctx) => {
      const attempt = pending.get(ctx.context);
      if (!attempt) return;
      pending.delete(ctx.context);
      const returned: unknown = ctx.context.returned;
      if (isApiError(returned)) {
        const code = returned.body?.code;
        if (typeof code === "string" && WRONG_PASSWORD.has(code)) {
          await throttle.record(attempt.account, attempt.ip, false);
        }
      } else if (returned !== undefined) {
        await throttle.record(attempt.account, attempt.ip, true);
      }
    }),
  };
}
