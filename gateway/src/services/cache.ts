import { createHash } from "node:crypto";
import type { Redis } from "ioredis";

/** What the cache keeps of an answer: enough to replay it as JSON or as a stream. */
export interface CachedAnswer {
  kind: "chat" | "completion";
  model: string;
  text: string;
  finishReason: string;
  promptTokens: number;
  completionTokens: number;
}

export interface ResponseCache {
  get(key: string): Promise<CachedAnswer | undefined>;
  /** Stores an answer; resolves false (nothing stored) when it is over the entry byte bound. */
  set(key: string, value: CachedAnswer): Promise<boolean>;
  /** Removes every entry; resolves with how many were removed. */
  purge(): Promise<number>;
  size(): Promise<number>;
}

/** Fields that change the transport, not the answer. */
const TRANSPORT = new Set(["stream", "stream_options", "user"]);

/**
 * Only deterministic requests are cached: temperature 0 or a fixed seed, one choice,
 * no tools or log-probabilities (which the cache does not keep).
 */
export function isCacheable(body: Record<string, unknown>): boolean {
  const deterministic = body.temperature === 0 || typeof body.seed === "number";
  const n = body.n;
  return (
    deterministic &&
    (n === undefined || n === 1) &&
    !body.logprobs &&
    body.top_logprobs === undefined &&
    body.tools === undefined &&
    body.functions === undefined
  );
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === "object") {
    const obj = value as Record<string, unknown>;
    return Object.fromEntries(
      Object.keys(obj)
        .sort()
        .map((k) => [k, canonical(obj[k])]),
    );
  }
  return value;
}

/** Exact-match key: scope (user id or "shared"), path, model, every sampling parameter, all messages. */
export function cacheKey(scope: string, path: string, body: Record<string, unknown>): string {
  const kept = Object.fromEntries(Object.entries(body).filter(([k]) => !TRANSPORT.has(k)));
  const text = JSON.stringify([scope, path, canonical(kept)]);
  return createHash("sha256").update(text).digest("hex");
}

/** The OpenAI JSON answer for a cached entry. */
export function answerJson(a: CachedAnswer, id: string): Record<string, unknown> {
  const created = Math.floor(Date.now() / 1000);
  const choice =
    a.kind === "chat"
      ? { index: 0, message: { role: "assistant", content: a.text }, finish_reason: a.finishReason }
      : { index: 0, text: a.text, finish_reason: a.finishReason };
  return {
    id,
    object: a.kind === "chat" ? "chat.completion" : "text_completion",
    created,
    model: a.model,
    choices: [choice],
    usage: {
      prompt_tokens: a.promptTokens,
      completion_tokens: a.completionTokens,
      total_tokens: a.promptTokens + a.completionTokens,
    },
  };
}

/** The SSE `data:` payloads replaying a cached entry as a stream (ending in [DONE]). */
export function answerEvents(a: CachedAnswer, id: string, includeUsage: boolean): string[] {
  const created = Math.floor(Date.now() / 1000);
  const object = a.kind === "chat" ? "chat.completion.chunk" : "text_completion";
  const chunk = (text: string | null, finish: string | null) =>
    JSON.stringify({
      id,
      object,
      created,
      model: a.model,
      choices: [
        a.kind === "chat"
          ? { index: 0, delta: text === null ? {} : { content: text }, finish_reason: finish }
          : { index: 0, text: text ?? "", finish_reason: finish },
      ],
    });
  const out = [chunk(a.text, null), chunk(null, a.finishReason)];
  if (includeUsage) {
    out.push(
      JSON.stringify({
        id,
        object,
        created,
        model: a.model,
        choices: [],
        usage: {
          prompt_tokens: a.promptTokens,
          completion_tokens: a.completionTokens,
          total_tokens: a.promptTokens + a.completionTokens,
        },
      }),
    );
  }
  out.push("[DONE]");
  return out;
}

/** An entry as stored (JSON, UTF-8): what the byte bound measures. */
export function encodeEntry(value: CachedAnswer): string {
  return JSON.stringify(value);
}

/**
 * In-process LRU with a time-to-live, an entry-count bound and a per-entry byte bound, so
 * the whole cache stays under maxEntries × maxEntryBytes.
 */
export class MemoryCache implements ResponseCache {
  private readonly entries = new Map<string, { value: CachedAnswer; expires: number }>();

  constructor(
    private readonly maxEntries: number,
    private readonly ttlMs: number,
    private readonly maxEntryBytes: number,
  ) {}

  async get(key: string): Promise<CachedAnswer | undefined> {
    const e = this.entries.get(key);
    if (!e) return undefined;
    this.entries.delete(key);
    if (e.expires <= Date.now()) return undefined;
    this.entries.set(key, e); // most recently used last
    return e.value;
  }

  async set(key: string, value: CachedAnswer): Promise<boolean> {
    if (Buffer.byteLength(encodeEntry(value)) > this.maxEntryBytes) return false;
    this.entries.delete(key);
    this.entries.set(key, { value, expires: Date.now() + this.ttlMs });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
    return true;
  }

  async purge(): Promise<number> {
    const n = this.entries.size;
    this.entries.clear();
    return n;
  }

  async size(): Promise<number> {
    return this.entries.size;
  }
}

const PREFIX = "gw:cache:";

/**
 * Entries in Redis with a TTL, shared by every gateway instance. The entry-count bound is
 * kept with a sorted set of keys by insertion time (oldest evicted first); entries over
 * the byte bound are never written.
 */
export class RedisCache implements ResponseCache {
  constructor(
    private readonly redis: Redis,
    private readonly maxEntries: number,
    private readonly ttlMs: number,
    private readonly maxEntryBytes: number,
  ) {}

  async get(key: string): Promise<CachedAnswer | undefined> {
    const raw = await this.redis.get(PREFIX + key);
    return raw ? (JSON.parse(raw) as CachedAnswer) : undefined;
  }

  async set(key: string, value: CachedAnswer): Promise<boolean> {
    const encoded = encodeEntry(value);
    if (Buffer.byteLength(encoded) > this.maxEntryBytes) return false;
    const now = Date.now();
    await this.redis
      .multi()
      .set(PREFIX + key, encoded, "PX", this.ttlMs)
      .zadd(`${PREFIX}index`, now, key)
      .zremrangebyscore(`${PREFIX}index`, 0, now - this.ttlMs)
      .exec();
    const extra = (await this.redis.zcard(`${PREFIX}index`)) - this.maxEntries;
    if (extra > 0) {
      const old = await this.redis.zrange(`${PREFIX}index`, 0, extra - 1);
      if (old.length > 0) {
        await this.redis
          .multi()
          .del(...old.map((k) => PREFIX + k))
          .zrem(`${PREFIX}index`, ...old)
          .exec();
      }
    }
    return true;
  }

  async purge(): Promise<number> {
    const keys = await this.redis.zrange(`${PREFIX}index`, 0, -1);
    if (keys.length > 0) await this.redis.del(...keys.map((k) => PREFIX + k));
    await this.redis.del(`${PREFIX}index`);
    return keys.length;
  }

  async size(): Promise<number> {
    await this.redis.zremrangebyscore(`${PREFIX}index`, 0, Date.now() - this.ttlMs);
    return this.redis.zcard(`${PREFIX}index`);
  }
}
