import { HttpError } from "../errors.js";
import { modelSubject, type Subject } from "./limit-store.js";
import type { Caller } from "./limits.js";
import type { ModelAccess, ModelUser } from "./model-access.js";

/**
 * What a request's `model` field means: the public model name its rules and limits are
 * written for, with surrounding spaces, case, aliases and "default" (or no model at all)
 * resolved. The routing catalog provides one; `ListedModelNames` reads the upstream's list.
 */
export interface ModelNames {
  /** The public model name for `sent`; throws (an HttpError) when it cannot tell. */
  resolve(sent: string | undefined): Promise<string>;
}

/** A model as a `/v1/models` list shows it (llm-server adds `aliases`, maybe `default`). */
export interface ListedModel {
  id: string;
  aliases?: string[];
  default?: boolean;
}

/**
 * Resolves names against a model list (the upstream's `/v1/models`), read at most every
 * `ttlMs`: `"default"` or no model means the list's default (else its first model), an id
 * or alias in any case means that model's id, any other name stays as sent (trimmed).
 */
export class ListedModelNames implements ModelNames {
  private cached: { models: ListedModel[]; until: number } | null = null;
  private reading: Promise<ListedModel[]> | null = null;

  constructor(
    /** Reads the list; shared by the calls waiting for it, so it bounds its own time. */
    private readonly list: () => Promise<ListedModel[]>,
    private readonly ttlMs = 30_000,
    private readonly clock: () => number = Date.now,
  ) {}

  async resolve(sent: string | undefined): Promise<string> {
    const name = (sent ?? "").trim();
    const key = name.toLowerCase();
    const models = await this.models();
    if (key === "" || key === "default") {
      const fallback = models.find((m) => m.default === true) ?? models[0];
      if (!fallback) {
        throw new HttpError(503, "LLM_UNAVAILABLE", "No model is served to use as the default");
      }
      return fallback.id;
    }
    const known = models.find(
      (m) => m.id.toLowerCase() === key || (m.aliases ?? []).some((a) => a.toLowerCase() === key),
    );
    return known?.id ?? name;
  }

  private async models(): Promise<ListedModel[]> {
    if (this.cached && this.clock() < this.cached.until) return this.cached.models;
    this.reading ??= this.list().finally(() => {
      this.reading = null;
    });
    const models = await this.reading;
    this.cached = { models, until: this.clock() + this.ttlMs };
    return models;
  }
}

/** The error of a refused model: 403 MODEL_FORBIDDEN, naming it. */
export function modelForbidden(model: string): HttpError {
  return new HttpError(
    403,
    "MODEL_FORBIDDEN",
    `The model "${model}" is not available to you; ask an administrator for access`,
  );
}

/**
 * Checks an LLM call's model before anything else happens to it (cache, quota, upstream):
 * a refused model is a 403; a per-model daily limit becomes one more limit subject, reserved
 * and settled atomically with the caller's others.
 */
export class ModelGate {
  constructor(
    private readonly access: ModelAccess,
    private readonly names: ModelNames,
  ) {}

  /**
   * Throws 403 MODEL_FORBIDDEN when `caller` may not use the model `sent` means; notes the
   * name on the call (`caller.model`) and returns the extra limit subjects it is held by
   * (none, or its per-model quota).
   */
  async check(caller: Caller & { model?: string }, sent: unknown): Promise<Subject[]> {
    // Calls in flight are checked again (ActiveCalls, see allows): a later deny ends this one.
    caller.model = typeof sent === "string" ? sent : "";
    // Nothing configured (the usual case): no name to resolve, no query.
    if (!(await this.access.active())) return [];
    const model = await this.names.resolve(caller.model);
    if (!(await this.access.allowed(caller, model))) throw modelForbidden(model);
    const limit = await this.access.tokenLimit(caller, model);
    return limit ? [modelSubject(caller.userId, limit.key, limit.tokensPerDay)] : [];
  }

  /**
   * Whether a call may fall back to the model `name`: allowed to `who`, and not held by a
   * per-model quota of theirs — the call reserved against the model asked for, so answering
   * from a capped model would spend that model's quota unreserved (and past its end).
   */
  async mayFallBackTo(who: ModelUser, name: string): Promise<boolean> {
    if (!(await this.access.active())) return true;
    const model = await this.names.resolve(name);
    if (!(await this.access.allowed(who, model))) return false;
    return (await this.access.tokenLimit(who, model)) === null;
  }

  /** Whether `who` may use the model a request named `sent` (for calls in flight). */
  async allows(who: ModelUser, sent: string): Promise<boolean> {
    if (!(await this.access.active())) return true;
    return this.access.allowed(who, await this.names.resolve(sent));
  }

  /**
   * An OpenAI model list (`{data: [{id}, …]}` as text) without the models `who` may not use;
   * the text unchanged when nothing is taken out (or it is no such list).
   */
  async filterList(who: ModelUser, text: string): Promise<string> {
    if (!(await this.access.active())) return text;
    let list: { data?: unknown };
    try {
      list = JSON.parse(text) as { data?: unknown };
    } catch {
      return text;
    }
    if (!Array.isArray(list.data)) return text;
    const entries = list.data as { id?: unknown }[];
    const ids = entries.map((m) => (typeof m.id === "string" ? m.id : ""));
    const allowed = new Set(await this.access.filter(who, ids));
    const kept = entries.filter((_, i) => allowed.has(ids[i] ?? ""));
    return kept.length === entries.length ? text : JSON.stringify({ ...list, data: kept });
  }

  /** The per-model quotas `caller` is held by, each with its limit subject (counters). */
  async quotas(caller: Caller): Promise<{ model: string; subject: Subject }[]> {
    const limits = await this.access.tokenLimits(caller);
    return limits.map((l) => ({
      model: l.model,
      subject: modelSubject(caller.userId, l.key, l.tokensPerDay),
    }));
  }
}
