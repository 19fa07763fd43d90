import { createHash, randomBytes } from "node:crypto";
import { sql } from "kysely";
import type { Auth } from "../auth/auth.js";
import type { AuthUser } from "../auth/principal.js";
import type { Database } from "../db/database.js";
import { HttpError } from "../errors.js";
import type { UserService } from "./users.js";

/** How long a setup link works. */
export const SETUP_LINK_TTL_MS = 60 * 60_000;
const PREFIX = "admin-setup:";

const hashOf = (token: string) => createHash("sha256").update(token, "utf8").digest("hex");

/** The one line that hands the operator a setup link. */
export function setupLinkLine(webOrigin: string, token: string): string {
  const minutes = Math.round(SETUP_LINK_TTL_MS / 60_000);
  return (
    `SETUP (operator only, not logged): no admin account exists. Create it within ${minutes} ` +
    `minutes with this one-time link: ${new URL(`/setup?token=${token}`, webOrigin).href}\n`
  );
}

export interface NewAdmin {
  token: string;
  email: string;
  password: string;
  name: string;
}

/**
 * The first admin account comes from the operator, never from open sign-up: while no admin
 * exists the gateway issues one-time setup tokens (printed on its stdout at start, or by
 * `bin/admin setup-link`). Only a token's SHA-256 is stored (better-auth's `verification`
 * table); a token works once, for SETUP_LINK_TTL_MS, and only while there is no admin.
 */
export class AdminSetup {
  constructor(
    private readonly auth: Auth,
    private readonly db: Database,
    private readonly users: UserService,
  ) {}

  /** True once any account has the admin role. */
  async adminExists(): Promise<boolean> {
    const ctx = await this.auth.$context;
    const admins = await ctx.internalAdapter.listUsers(1, 0, undefined, [
      { field: "role", value: "admin" },
    ]);
    return admins.length > 0;
  }

  /** A new one-time token, or null when an admin exists already (no link is needed). */
  async issue(ttlMs = SETUP_LINK_TTL_MS): Promise<string | null> {
    if (await this.adminExists()) return null;
    const token = randomBytes(32).toString("base64url");
    const ctx = await this.auth.$context;
    await ctx.internalAdapter.createVerificationValue({
      identifier: PREFIX + hashOf(token),
      value: "admin-setup",
      expiresAt: new Date(Date.now() + ttlMs),
    });
    return token;
  }

  /**
   * Creates the admin account with a valid token, which is used up: 403 for an unknown,
   * used or expired token, 409 when an admin exists or the email is taken (the token then
   * still works), 400 for a password better-auth refuses.
   */
  async complete({ token, email, password, name }: NewAdmin): Promise<AuthUser> {
    if (await this.adminExists()) {
      throw new HttpError(409, "ADMIN_EXISTS", "An admin account exists already: sign in");
    }
    const ctx = await this.auth.$context;
    const identifier = PREFIX + hashOf(token);
    // Atomic: of two requests with the same token, one gets the row.
    const consumed = await ctx.internalAdapter.consumeVerificationValue(identifier);
    if (!consumed) {
      throw new HttpError(
        403,
        "SETUP_LINK_INVALID",
        "This setup link is unknown, used or expired: restart the gateway or run " +
          "`gateway/bin/admin setup-link` for a new one",
      );
    }
    try {
      if (await this.users.findByEmail(email)) {
        throw new HttpError(409, "EMAIL_TAKEN", "An account with this email exists already");
      }
      const created = await this.auth.api
        .signUpEmail({ body: { email, password, name } })
        .catch((err: unknown) => {
          throw asHttpError(err);
        });
      const admin = await this.users.update(created.user.id, { role: "admin" });
      await this.revokeAll();
      return admin;
    } catch (err) {
      // Not used after all: the operator can correct the form and send it again.
      await ctx.internalAdapter.createVerificationValue({
        identifier,
        value: consumed.value,
        expiresAt: consumed.expiresAt,
      });
      throw err;
    }
  }

  /** Drops every outstanding setup token (an admin exists now). */
  async revokeAll(): Promise<void> {
    await sql`delete from verification where identifier like ${`${PREFIX}%`}`.execute(
      this.db.kysely,
    );
  }
}

/** better-auth's APIError (e.g. a too short password) as the gateway's error, status kept. */
function asHttpError(err: unknown): unknown {
  const e = err as { statusCode?: unknown; body?: { code?: unknown; message?: unknown } };
  if (typeof e.statusCode !== "number" || e.statusCode >= 500) return err;
  const code = typeof e.body?.code === "string" ? e.body.code : "BAD_REQUEST";
  const message = typeof e.body?.message === "string" ? e.body.message : "Refused";
  return new HttpError(e.statusCode, code, message);
}
