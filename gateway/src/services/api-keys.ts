import type { Auth } from "../auth/auth.js";
import type { Database } from "../db/database.js";
import { notFound } from "../errors.js";

export interface ApiKeyInfo {
  id: string;
  name: string | null;
  start: string | null;
  createdAt: Date;
  expiresAt: Date | null;
  lastUsedAt: Date | null;
}

interface ApiKeyRow {
  id: string;
  name?: string | null;
  start?: string | null;
  createdAt: Date;
  expiresAt?: Date | null;
  lastRequest?: Date | null;
}

const DAY_S = 24 * 60 * 60;

/** Per-user API keys, through better-auth's api-key plugin (keys are stored hashed). */
export class ApiKeyService {
  /**
   * With `db`, revoking a key also removes its own limits (admin's and owner's);
   * `onChange` runs once a key is gone (clears the verified-key cache).
   */
  constructor(
    private readonly auth: Auth,
    private readonly db?: Database,
    private readonly onChange: () => void = () => undefined,
  ) {}

  async list(userId: string): Promise<ApiKeyInfo[]> {
    const ctx = await this.auth.$context;
    const rows = await ctx.adapter.findMany<ApiKeyRow>({
      model: "apikey",
      where: [{ field: "referenceId", value: userId }],
      sortBy: { field: "createdAt", direction: "desc" },
    });
    return rows.map((r) => ({
      id: r.id,
      name: r.name ?? null,
      start: r.start ?? null,
      createdAt: new Date(r.createdAt),
      expiresAt: r.expiresAt ? new Date(r.expiresAt) : null,
      lastUsedAt: r.lastRequest ? new Date(r.lastRequest) : null,
    }));
  }

  /** Creates a key; the plaintext `key` is returned only here. */
  async create(
    userId: string,
    name: string,
    expiresInDays: number | undefined,
  ): Promise<{ id: string; name: string; key: string; expiresAt: Date | null }> {
    const created = await this.auth.api.createApiKey({
      body: {
        userId,
        name,
        ...(expiresInDays !== undefined ? { expiresIn: expiresInDays * DAY_S } : {}),
      },
    });
    return {
      id: created.id,
      name: created.name ?? name,
      key: created.key,
      expiresAt: created.expiresAt ? new Date(created.expiresAt) : null,
    };
  }

  /** Any user's key by id (admin use): its owner and name, or null when unknown. */
  async find(id: string): Promise<{ id: string; userId: string; name: string | null } | null> {
    const ctx = await this.auth.$context;
    const row = await ctx.adapter.findOne<{
      id: string;
      referenceId: string;
      name?: string | null;
    }>({ model: "apikey", where: [{ field: "id", value: id }] });
    return row ? { id: row.id, userId: row.referenceId, name: row.name ?? null } : null;
  }

  async revoke(userId: string, id: string): Promise<void> {
    const ctx = await this.auth.$context;
    const where = [
      { field: "id", value: id },
      { field: "referenceId", value: userId },
    ];
    const found = await ctx.adapter.findOne({ model: "apikey", where });
    if (!found) throw notFound("API key");
    await ctx.adapter.delete({ model: "apikey", where });
    this.onChange();
    await this.db?.kysely
      .deleteFrom("limit_override")
      .where("subject", "in", [`key:${id}`, `keyown:${id}`])
      .execute();
  }
}
