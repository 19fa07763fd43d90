import { APIError, type createAuthMiddleware, getSessionFromCtx } from "better-auth/api";
import type { Role } from "../schemas.js";
import { CLIENT_IP_HEADER } from "./guards.js";
import type { InvitationStore } from "./invitation-store.js";
import type { SettingsService } from "./settings.js";

/** The parts of better-auth's endpoint context the gate reads. */
interface HookContext {
  path?: string;
  headers?: Headers | undefined;
}

type MiddlewareContext = Parameters<Parameters<typeof createAuthMiddleware>[0]>[0];

const SIGN_UP_EMAIL = "/sign-up/email";

export const signupClosed = () =>
  new APIError("FORBIDDEN", {
    code: "SIGNUP_CLOSED",
    message: "Sign-up is closed on this server: ask an admin for an account",
  });

export const invitationRequired = () =>
  new APIError("FORBIDDEN", {
    code: "INVITATION_REQUIRED",
    message: "Sign-up needs an invitation on this server: open the link from your invitation mail",
  });

/**
 * The sign-up policy inside better-auth, for accounts people create themselves (email
 * sign-up or a first OAuth sign-in; calls with the client-IP header the gateway adds):
 * `open` lets them in, `approval` creates them pending, `invite` and `closed` refuse email
 * sign-up before anything is looked up (the answer does not reveal whether the email has an
 * account); in `invite` mode an OAuth sign-up needs an unused invitation for its email,
 * which it uses up. Accounts the gateway creates itself (setup link, invitations,
 * bin/admin) are not its business.
 */
export class SignupGate {
  constructor(
    private readonly settings: SettingsService,
    private readonly invitations: InvitationStore,
  ) {}

  /**
   * better-auth's before-hook on every outside request: refuses email sign-up in invite and
   * closed mode, and better-auth's own API-key endpoints to a pending account.
   */
  async beforeRequest(ctx: MiddlewareContext): Promise<void> {
    if (!external(ctx)) return;
    if (ctx.path.startsWith("/api-key/")) {
      const session = await getSessionFromCtx(ctx);
      const pending = (session?.user as { pending?: unknown } | undefined)?.pending;
      if (pending === true || pending === 1) {
        throw new APIError("FORBIDDEN", {
          code: "ACCOUNT_PENDING",
          message: "Your account is waiting for an admin's approval; until then it can use nothing",
        });
      }
      return;
    }
    if (ctx.path !== SIGN_UP_EMAIL) return;
    const mode = await this.settings.signupMode();
    if (mode === "closed") throw signupClosed();
    if (mode === "invite") throw invitationRequired();
  }

  /** Before an account is stored: what to add to it (pending, an invitation's role), or refuse. */
  async beforeCreate(
    user: { email: string },
    ctx: HookContext | null,
  ): Promise<{ pending?: true; role?: Role }> {
    if (!ctx || !external(ctx)) return {};
    const mode = await this.settings.signupMode();
    if (mode === "closed") throw signupClosed();
    if (mode === "invite") {
      // Email sign-up was refused already; this is an OAuth sign-up, whose email the
      // provider vouches for: an invitation to that address lets it in.
      if (ctx.path === SIGN_UP_EMAIL) throw invitationRequired();
      const invitation = await this.invitations.consumeForEmail(user.email);
      if (!invitation) throw invitationRequired();
      return { role: invitation.role };
    }
    return mode === "approval" ? { pending: true } : {};
  }
}

function external(ctx: HookContext): boolean {
  return Boolean(ctx.headers?.get(CLIENT_IP_HEADER));
}
