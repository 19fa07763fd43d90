import type { Auth } from "../auth/auth.js";
import {
  type Invitation,
  type InvitationStore,
  invitationInvalid,
} from "../auth/invitation-store.js";
import type { MailOutcome, MailService } from "../auth/mail.js";
import type { AuthUser } from "../auth/principal.js";
import { HttpError } from "../errors.js";
import type { Role } from "../schemas.js";
import type { UserService } from "./users.js";

export type { Invitation } from "../auth/invitation-store.js";

export interface AcceptInvitation {
  token: string;
  name: string;
  password: string;
  /** When given, must be the invited address (the account's email is always the invited one). */
  email?: string | undefined;
}

/** What an admin gets back for a new invitation. */
export interface InvitationSent {
  invitation: Invitation;
  /** The link, when it was not mailed (no SMTP, or the mail failed): hand it over yourself. */
  link: string | undefined;
  mail: MailOutcome;
}

/**
 * Invitations end to end: admins invite (the link is mailed when SMTP is set up, else
 * returned to them), the invited person creates the account with the link. An invited
 * account is neither pending nor unverified: the link proved the address.
 */
export class InvitationService {
  constructor(
    private readonly auth: Auth,
    private readonly store: InvitationStore,
    private readonly users: UserService,
    private readonly mail: MailService,
    private readonly publicUrl: string,
  ) {}

  /** The page the invitation link opens. */
  link(token: string): string {
    return new URL(`/invite?token=${token}`, this.publicUrl).href;
  }

  /** Invites `email` as `role`: 409 when an account has that email already. */
  async invite(email: string, role: Role, invitedBy: AuthUser | null): Promise<InvitationSent> {
    const address = email.trim().toLowerCase();
    if (await this.users.findByEmail(address)) {
      throw new HttpError(409, "EMAIL_TAKEN", "An account with this email exists already");
    }
    const { invitation, token } = await this.store.create(address, role, invitedBy?.id ?? null);
    const link = this.link(token);
    const mail = await this.mail.sendInvitation(address, link, {
      expiresAt: invitation.expiresAt,
      invitedBy: invitedBy?.name ?? null,
    });
    return { invitation, link: mail.sent ? undefined : link, mail };
  }

  /**
   * Creates the invited account (email from the invitation, password hashed by better-auth)
   * and uses the invitation up. 403 for an unusable link or another email, 409 when the
   * address has an account by now, 400 for a password of the wrong length; the link still
   * works after a 400 or 409.
   */
  async accept({ token, name, password, email }: AcceptInvitation): Promise<AuthUser> {
    const invitation = await this.store.find(token);
    if (email !== undefined && email.trim().toLowerCase() !== invitation.email) {
      throw new HttpError(
        403,
        "INVITATION_EMAIL_MISMATCH",
        "This invitation is for another email address",
      );
    }
    await this.users.checkPasswordLength(password);
    if (await this.users.findByEmail(invitation.email)) {
      throw new HttpError(409, "EMAIL_TAKEN", "An account with this email exists already: sign in");
    }
    const used = await this.store.consume(token);
    if (!used) throw invitationInvalid();
    const ctx = await this.auth.$context;
    let createdId: string | undefined;
    try {
      const created = await ctx.internalAdapter.createUser(
        { email: used.email, name, emailVerified: true },
        { method: "email-password" },
      );
      createdId = created.id;
      await this.users.setPassword(created.id, password);
      await this.store.usedBy(used.id, created.id);
      return used.role === "admin"
        ? await this.users.update(created.id, { role: "admin" })
        : await this.users.get(created.id);
    } catch (err) {
      // Not used after all: no half-made account, and the link works again.
      if (createdId) await ctx.internalAdapter.deleteUser(createdId).catch(() => undefined);
      await this.store.release(used.id);
      throw err;
    }
  }
}
