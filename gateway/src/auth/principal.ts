import { createHash } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import { fromNodeHeaders } from "better-auth/node";
import type { Database } from "../db/database.js";
import type { Role } from "../schemas.js";
import { API_KEY_PREFIX, type Auth } from "./auth.js";
import { TtlCache } from "./ttl-cache.js";

export interface AuthUser {
  id: string;
  email: string;
  name: string;
  role: Role;
  disabled: boolean;
  twoFactorEnabled: boolean;
  /** Signed up while sign-up needed approval and not approved yet: may use nothing. */
  pending: boolean;
  createdAt: Date;
}

/** Who is calling, and how they proved it. */
export interface Principal {
  user: AuthUser;
  /** cookie: browser session; session-token / jwt: bearer tokens; api-key: programmatic. */
  via: "cookie" | "session-token" | "jwt" | "api-key";
  /** The session's token when authenticated by session (cookie or bearer session token). */
  sessionToken?: string;
  /** The API key's id when authenticated by API key. */
  apiKeyId?: string;
}

interface RawUser {
  id: string;
  email: string;
  name: string;
  role?: string | null | undefined;
  banned?: boolean | null | undefined;
  twoFactorEnabled?: boolean | null | undefined;
  pending?: unknown;
  createdAt: Date;
}

export function toAuthUser(u: RawUser): AuthUser {
  return {
    id: u.id,
    email: u.email,
    name: u.name,
    role: u.role === "admin" ? "admin" : "user",
    disabled: u.banned === true,
    twoFactorEnabled: u.twoFactorEnabled === true,
    pending: u.pending === true || u.pending === 1,
    createdAt: new Date(u.createdAt),
  };
}

function bearerToken(headers: IncomingHttpHeaders): string | undefined {
  const value = headers.authorization;
  if (value?.slice(0, 7).toLowerCase() !== "bearer ") return undefined;
  const token = value.slice(7).trim();
  return token === "" ? undefined : token;
}

/**
 * Resolves the caller of a request from an API key, a JWT, a bearer session token
 * or the session cookie, in that order. Disabled accounts and revoked sessions
 * resolve to nobody.
 */
export class PrincipalResolver {
  /**
   * @param keys verified API keys by the SHA-256 of the key: a hit costs no database
   *   round trip (and no write of the key's `lastRequest`). Whoever changes a key, a user's
   *   role or disabled flag in this process clears it; its TTL bounds the rest.
   */
  constructor(
    private readonly auth: Auth,
    private readonly db: Database,
    private readonly keys: TtlCache<Principal> = new TtlCache(0),
  ) {}

  async resolve(headers: IncomingHttpHeaders): Promise<Principal | null> {
    const token = bearerToken(headers);
    if (token?.startsWith(API_KEY_PREFIX)) return this.fromApiKey(token);
    if (token && token.split(".").length === 3) return this.fromJwt(token);
    const session = await this.auth.api
      .getSession({ headers: fromNodeHeaders(headers), query: { disableCookieCache: true } })
      .catch(() => null);
    if (!session) return null;
    const user = toAuthUser(session.user);
    if (user.disabled) return null;
    return { user, via: token ? "session-token" : "cookie", sessionToken: session.session.token };
  }

  private async fromApiKey(key: string): Promise<Principal | null> {
    const cache = this.keys;
    const id = cache.enabled ? createHash("sha256").update(key).digest("base64url") : "";
    const hit = cache.enabled ? cache.get(id) : undefined;
    if (hit) return hit;
    const generation = cache.generation;
    // better-auth checks the key (hash, enabled, expiry) and records its use (lastRequest).
    const result = await this.auth.api.verifyApiKey({ body: { key } }).catch(() => null);
    if (!result?.valid || !result.key) return null;
    const user = await this.findUser(result.key.referenceId);
    if (!user) return null;
    const principal: Principal = { user, via: "api-key", apiKeyId: result.key.id };
    // Only keys without a request allowance of their own (ours never have one: the
    // gateway's limits apply instead); an expiring key is never cached past its expiry.
    const { remaining, expiresAt } = result.key as {
      remaining?: number | null;
      expiresAt?: Date | null;
    };
    if (remaining == null) {
      const until = expiresAt ? new Date(expiresAt).getTime() : undefined;
      cache.set(id, principal, generation, until);
    }
    return principal;
  }

  private async fromJwt(token: string): Promise<Principal | null> {
    const result = await this.auth.api.verifyJWT({ body: { token } }).catch(() => null);
    const payload = result?.payload;
    if (!payload?.sub) return null;
    // A JWT lives only as long as the session it was minted from (sign-out, password
    // change, role change and disable all delete sessions).
    const sid = typeof payload.sid === "string" ? payload.sid : "";
    const row = await this.db.kysely
      .selectFrom("session")
      .select("id")
      .where("id", "=", sid)
      .executeTakeFirst();
    if (!row) return null;
    const user = await this.findUser(payload.sub);
    return user ? { user, via: "jwt" } : null;
  }

  private async findUser(id: string): Promise<AuthUser | null> {
    const ctx = await this.auth.$context;
    const raw = await ctx.internalAdapter.findUserById(id);
    if (!raw) return null;
    const user = toAuthUser(raw as RawUser);
    return user.disabled ? null : user;
  }
}
