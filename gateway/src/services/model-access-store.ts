import { randomUUID } from "node:crypto";
import type { Database } from "../db/database.js";
import type { Role } from "../schemas.js";

/** The longest model name a rule may name (upstream names such as `org/Model-7B-GGUF:Q4`). */
export const MAX_MODEL_NAME = 200;
/** The largest per-model daily token limit (far past any real day; safe in every store). */
export const MAX_MODEL_TOKENS_PER_DAY = 1_000_000_000_000;

/** Who a model rule or limit is for: every user of a role, or one user. */
export type ModelSubject = { role: Role } | { userId: string };

/** A rule or limit as stored, with the user's email when it is for one user. */
export interface ModelEntry<V> {
  id: string;
  model: string;
  role: Role | null;
  userId: string | null;
  email: string | null;
  value: V;
}

export type ModelRule = ModelEntry<boolean>;
export type ModelLimit = ModelEntry<number>;

/** The key rules are matched by: trimmed, lower-case (`Gemma ` and `gemma` are one model). */
export function modelKey(model: string): string {
  return model.trim().toLowerCase();
}

/** The stored subject of a rule or limit: `role:<role>` or `user:<id>`. */
export function subjectOf(s: ModelSubject): string {
  return "role" in s ? `role:${s.role}` : `user:${s.userId}`;
}

type Table = "model_access_rule" | "model_limit";

/**
 * The model access rules and per-model limits in the database (`model_access_rule`,
 * `model_limit`): listing and upserts by (model, subject), deletes by id. A user's rows go
 * with the user (foreign key, on delete cascade).
 */
export class ModelAccessStore {
  constructor(
    private readonly db: Database,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Every rule, by model then subject. */
  async rules(): Promise<ModelRule[]> {
    const rows = await this.list("model_access_rule")
      .select("model_access_rule.allow as value")
      .execute();
    return rows.map((r) => entry(r, Number(r.value) === 1));
  }

  /** Every per-model limit, by model then subject. */
  async limits(): Promise<ModelLimit[]> {
    const rows = await this.list("model_limit")
      .select("model_limit.tokensPerDay as value")
      .execute();
    return rows.map((r) => entry(r, Number(r.value)));
  }

  private list(table: Table) {
    return this.db.kysely
      .selectFrom(table)
      .leftJoin("user", "user.id", `${table}.userId`)
      .select([
        `${table}.id as id`,
        `${table}.model as model`,
        `${table}.role as role`,
        `${table}.userId as userId`,
        "user.email as email",
      ])
      .orderBy(`${table}.modelKey`)
      .orderBy(`${table}.subject`);
  }

  /** Sets whether `subject` may use `model` (replacing its rule for that model); its id. */
  async setRule(model: string, subject: ModelSubject, allow: boolean): Promise<string> {
    return this.upsert("model_access_rule", model, subject, { allow: allow ? 1 : 0 });
  }

  /** Sets `subject`'s daily tokens of `model` (0 = no limit); its id. */
  async setLimit(model: string, subject: ModelSubject, tokensPerDay: number): Promise<string> {
    return this.upsert("model_limit", model, subject, { tokensPerDay });
  }

  private async upsert(
    table: Table,
    model: string,
    subject: ModelSubject,
    value: { allow: number } | { tokensPerDay: number },
  ): Promise<string> {
    const name = model.trim();
    const key = modelKey(name);
    const sub = subjectOf(subject);
    const updatedAt = this.clock();
    const row = {
      id: randomUUID(),
      model: name,
      modelKey: key,
      subject: sub,
      role: "role" in subject ? subject.role : null,
      userId: "userId" in subject ? subject.userId : null,
      updatedAt,
      ...value,
    };
    // The row's types differ per table only in `value`, which is the table's own column.
    await this.db.kysely
      .insertInto(table)
      .values(row as never)
      .onConflict((oc) =>
        oc.columns(["modelKey", "subject"]).doUpdateSet({ model: name, updatedAt, ...value }),
      )
      .execute();
    const stored = await this.db.kysely
      .selectFrom(table)
      .select("id")
      .where("modelKey", "=", key)
      .where("subject", "=", sub)
      .executeTakeFirstOrThrow();
    return stored.id;
  }

  /** Deletes a rule by id; false when there is none. */
  async deleteRule(id: string): Promise<boolean> {
    return this.delete("model_access_rule", id);
  }

  /** Deletes a limit by id; false when there is none. */
  async deleteLimit(id: string): Promise<boolean> {
    return this.delete("model_limit", id);
  }

  /** Deletes the rule or limit of `subject` on `model`; false when there is none. */
  async deleteFor(kind: "rule" | "limit", model: string, subject: ModelSubject): Promise<boolean> {
    const table = kind === "rule" ? "model_access_rule" : "model_limit";
    const result = await this.db.kysely
      .deleteFrom(table)
      .where("modelKey", "=", modelKey(model))
      .where("subject", "=", subjectOf(subject))
      .executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  private async delete(table: Table, id: string): Promise<boolean> {
    const result = await this.db.kysely.deleteFrom(table).where("id", "=", id).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }
}

function entry<V>(
  r: {
    id: string;
    model: string;
    role: string | null;
    userId: string | null;
    email: string | null;
  },
  value: V,
): ModelEntry<V> {
  return {
    id: r.id,
    model: r.model,
    role: r.role === "admin" || r.role === "user" ? r.role : null,
    userId: r.userId,
    email: r.email,
    value,
  };
}
