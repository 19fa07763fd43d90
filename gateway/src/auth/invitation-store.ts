import { createHash, randomBytes, randomUUID } from "node:crypto";
import type { Database } from "../db/database.js";
import type { InvitationTable } from "../db/schema.js";
import { HttpError, notFound } from "../errors.js";
import type { Role } from "../schemas.js";

const hashOf = (token: string) => createHash("sha256").update(token, "utf8").digest("hex");

export type InvitationStatus = "pending" | "used" | "expired" | "revoked";

/** An invitation as admins see it (never its token). */
export interface Invitation {
  id: string;
  email: string;
  role: Role;
  invitedBy: string | null;
  createdAt: Date;
  expiresAt: Date;
  usedAt: Date | null;
  revokedAt: Date | null;
  status: InvitationStatus;
}

function toInvitation(row: InvitationTable, now: number): Invitation {
  const status: InvitationStatus =
    row.usedAt !== null
      ? "used"
      : row.revokedAt !== null
        ? "revoked"
        : row.expiresAt <= now
          ? "expired"
          : "pending";
  return {
    id: row.id,
    email: row.email,
    role: row.role === "admin" ? "admin" : "user",
    invitedBy: row.invitedBy,
    createdAt: new Date(row.createdAt),
    expiresAt: new Date(row.expiresAt),
    usedAt: row.usedAt === null ? null : new Date(row.usedAt),
    revokedAt: row.revokedAt === null ? null : new Date(row.revokedAt),
    status,
  };
}

export const invitationInvalid = () =>
  new HttpError(
    403,
    "INVITATION_INVALID",
    "This invitation link is unknown, used, revoked or expired: ask an admin for a new one",
  );

/**
 * The invitation rows: created with a random token of which only the SHA-256 is stored,
 * bound to one email address, used at most once (an atomic conditional update), expiring.
 * Needs only the database, so the sign-up hooks inside better-auth can use it too.
 */
export class InvitationStore {
  constructor(
    private readonly db: Database,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** A new invitation and its token (the only time the token exists outside the link). */
  async create(
    email: string,
    role: Role,
    invitedBy: string | null,
  ): Promise<{ invitation: Invitation; token: string }> {
    const token = randomBytes(32).toString("base64url");
    const now = this.now();
    const row: InvitationTable = {
      id: randomUUID(),
      tokenHash: hashOf(token),
      email: email.trim().toLowerCase(),
      role,
      invitedBy,
      createdAt: now,
      expiresAt: now + this.ttlMs,
      usedAt: null,
      usedBy: null,
      revokedAt: null,
    };
    await this.db.kysely.insertInto("invitation").values(row).execute();
    return { invitation: toInvitation(row, now), token };
  }

  async list(limit: number, offset: number): Promise<Invitation[]> {
    const rows = await this.db.kysely
      .selectFrom("invitation")
      .selectAll()
      .orderBy("createdAt", "desc")
      .orderBy("id")
      .limit(limit)
      .offset(offset)
      .execute();
    const now = this.now();
    return rows.map((r) => toInvitation(r, now));
  }

  /** Revokes an unused invitation: 404 unknown, 409 already used. */
  async revoke(id: string): Promise<Invitation> {
    const k = this.db.kysely;
    await k
      .updateTable("invitation")
      .set({ revokedAt: this.now() })
      .where("id", "=", id)
      .where("usedAt", "is", null)
      .where("revokedAt", "is", null)
      .execute();
    const row = await k
      .selectFrom("invitation")
      .selectAll()
      .where("id", "=", id)
      .executeTakeFirst();
    if (!row) throw notFound("Invitation");
    const invitation = toInvitation(row, this.now());
    if (invitation.status === "used") {
      throw new HttpError(409, "INVITATION_USED", "This invitation was used already");
    }
    return invitation;
  }

  /** The usable invitation behind a token; 403 INVITATION_INVALID otherwise. */
  async find(token: string): Promise<Invitation> {
    const row = await this.db.kysely
      .selectFrom("invitation")
      .selectAll()
      .where("tokenHash", "=", hashOf(token))
      .executeTakeFirst();
    const invitation = row ? toInvitation(row, this.now()) : null;
    if (invitation?.status !== "pending") throw invitationInvalid();
    return invitation;
  }

  /**
   * Uses the invitation up, atomically: of two requests with the same token one gets it.
   * Null when it is unknown, used, revoked or expired.
   */
  async consume(token: string): Promise<Invitation | null> {
    return this.consumeWhere("tokenHash", hashOf(token));
  }

  /** Uses up the newest usable invitation for `email` (an OAuth sign-up has no token). */
  async consumeForEmail(email: string): Promise<Invitation | null> {
    const now = this.now();
    const row = await this.db.kysely
      .selectFrom("invitation")
      .select("id")
      .where("email", "=", email.trim().toLowerCase())
      .where("usedAt", "is", null)
      .where("revokedAt", "is", null)
      .where("expiresAt", ">", now)
      .orderBy("createdAt", "desc")
      .executeTakeFirst();
    return row ? this.consumeWhere("id", row.id) : null;
  }

  private async consumeWhere(
    column: "id" | "tokenHash",
    value: string,
  ): Promise<Invitation | null> {
    const now = this.now();
    const row = await this.db.kysely
      .updateTable("invitation")
      .set({ usedAt: now })
      .where(column, "=", value)
      .where("usedAt", "is", null)
      .where("revokedAt", "is", null)
      .where("expiresAt", ">", now)
      .returningAll()
      .executeTakeFirst();
    return row ? toInvitation(row, now) : null;
  }

  /** Records who used it. */
  async usedBy(id: string, userId: string): Promise<void> {
    await this.db.kysely
      .updateTable("invitation")
      .set({ usedBy: userId })
      .where("id", "=", id)
      .execute();
  }

  /** Gives a consumed invitation back (the account could not be created after all). */
  async release(id: string): Promise<void> {
    await this.db.kysely
      .updateTable("invitation")
      .set({ usedAt: null, usedBy: null })
      .where("id", "=", id)
      .execute();
  }
}
