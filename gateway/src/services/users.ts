import type { Where } from "better-auth";
import type { Auth } from "../auth/auth.js";
import { type AuthUser, toAuthUser } from "../auth/principal.js";
import type { Database } from "../db/database.js";
import { HttpError, notFound } from "../errors.js";
import type { Role } from "../schemas.js";

/** Account operations: own profile, password, deletion, and the admin's user management. */
export class UserService {
  /** `onChange` runs after a role, disabled-flag or deletion change (clears auth caches). */
  constructor(
    private readonly auth: Auth,
    private readonly db: Database,
    private readonly onChange: () => void = () => undefined,
  ) {}

  private get ctx() {
    return this.auth.$context;
  }

  async get(id: string): Promise<AuthUser> {
    const raw = await (await this.ctx).internalAdapter.findUserById(id);
    if (!raw) throw notFound("User");
    return toAuthUser(raw);
  }

  async rename(id: string, name: string): Promise<AuthUser> {
    await (await this.ctx).internalAdapter.updateUser(id, { name });
    return this.get(id);
  }

  /**
   * Throws 400 INVALID_PASSWORD unless `password` is the account's current password. With
   * the caller's `clientIp` the check goes through the sign-in throttle (per account and
   * IP), as better-auth's password checks do (guards.ts): its refusal (429 with Retry-After
   * while that pair is delayed, 503 while its store is unreachable) first, and the outcome
   * counted after.
   */
  async checkPassword(userId: string, password: string, clientIp?: string): Promise<void> {
    const ctx = await this.ctx;
    const throttled =
      clientIp === undefined
        ? null
        : { account: (await this.get(userId)).email.toLowerCase(), ip: clientIp };
    const throttle = this.auth.throttle;
    if (throttled) {
      const refused = await throttle.refusal(throttled.account, throttled.ip);
      if (refused)
        throw new HttpError(refused.status, refused.code, refused.message, refused.headers);
    }
    const credential = await ctx.internalAdapter.findCredentialAccount(userId);
    const ok =
      credential?.password != null &&
      (await ctx.password.verify({ hash: credential.password, password }));
    if (throttled) await throttle.record(throttled.account, throttled.ip, ok);
    if (!ok) throw new HttpError(400, "INVALID_PASSWORD", "The password is not correct");
  }

  /**
   * Sets a new password and deletes every session except `keepSessionToken`; the current
   * password is checked through the throttle when `clientIp` is given.
   */
  async changePassword(
    userId: string,
    currentPassword: string,
    newPassword: string,
    keepSessionToken: string | undefined,
    clientIp?: string,
  ): Promise<void> {
    await this.checkPassword(userId, currentPassword, clientIp);
    await this.setPassword(userId, newPassword);
    const ctx = await this.ctx;
    const sessions = await ctx.internalAdapter.listSessions(userId);
    const others = sessions.filter((s) => s.token !== keepSessionToken).map((s) => s.token);
    if (others.length > 0) await ctx.internalAdapter.deleteSessions(others);
  }

  /** 400 INVALID_PASSWORD_LENGTH unless better-auth's length rules accept `password`. */
  async checkPasswordLength(password: string): Promise<void> {
    const { minPasswordLength, maxPasswordLength } = (await this.ctx).password.config;
    if (password.length < minPasswordLength || password.length > maxPasswordLength) {
      throw new HttpError(
        400,
        "INVALID_PASSWORD_LENGTH",
        `The password must have ${minPasswordLength} to ${maxPasswordLength} characters`,
      );
    }
  }

  /** Sets a password (hashed by better-auth) without checking the old one; keeps sessions. */
  async setPassword(userId: string, newPassword: string): Promise<void> {
    await this.checkPasswordLength(newPassword);
    const ctx = await this.ctx;
    const hash = await ctx.password.hash(newPassword);
    const account = await ctx.internalAdapter.findCredentialAccount(userId);
    if (account) {
      await ctx.internalAdapter.updatePassword(userId, hash);
    } else {
      await ctx.internalAdapter.createAccount({
        userId,
        providerId: "credential",
        accountId: userId,
        password: hash,
      });
    }
  }

  /** Deletes the account with its sessions, keys, 2FA secret, conversations and messages. */
  async delete(userId: string): Promise<void> {
    const k = this.db.kysely;
    await k.deleteFrom("conversation").where("userId", "=", userId).execute();
    await k.deleteFrom("apikey").where("referenceId", "=", userId).execute();
    this.onChange();
    await (await this.ctx).internalAdapter.deleteUser(userId);
    this.onChange();
  }

  async list(q: string | undefined, limit: number, offset: number): Promise<AuthUser[]> {
    const term = q?.trim();
    const where: Where[] | undefined = term
      ? [
          // insensitive: better-auth uses ILIKE on PostgreSQL, whose LIKE is case-sensitive.
          {
            field: "email",
            operator: "contains",
            value: term,
            connector: "OR",
            mode: "insensitive",
          },
          {
            field: "name",
            operator: "contains",
            value: term,
            connector: "OR",
            mode: "insensitive",
          },
        ]
      : undefined;
    const rows = await (await this.ctx).internalAdapter.listUsers(
      limit,
      offset,
      { field: "createdAt", direction: "desc" },
      where,
    );
    return rows.map(toAuthUser);
  }

  /** Changes role and/or disabled flag; either change signs the user out everywhere. */
  async update(id: string, change: { role?: Role; disabled?: boolean }): Promise<AuthUser> {
    const before = await this.get(id);
    const data: Record<string, unknown> = {};
    if (change.role !== undefined && change.role !== before.role) data.role = change.role;
    if (change.disabled !== undefined && change.disabled !== before.disabled) {
      data.banned = change.disabled;
      data.banReason = change.disabled ? "disabled by an admin" : null;
    }
    if (Object.keys(data).length === 0) return before;
    const ctx = await this.ctx;
    await ctx.internalAdapter.updateUser(id, data);
    this.onChange();
    await ctx.internalAdapter.deleteUserSessions(id);
    return this.get(id);
  }

  /** Lets a pending account in (sign-up in approval mode); its sessions stay. */
  async approve(id: string): Promise<AuthUser> {
    const before = await this.get(id);
    if (!before.pending) return before;
    await (await this.ctx).internalAdapter.updateUser(id, { pending: false });
    this.onChange();
    return this.get(id);
  }

  async findByEmail(email: string): Promise<AuthUser | null> {
    const found = await (await this.ctx).internalAdapter.findUserByEmail(email.toLowerCase());
    return found ? toAuthUser(found.user) : null;
  }
}
