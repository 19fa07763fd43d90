import { createHash, randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { type Chunk, type ChunkJson, DONE } from "./chunks.js";

/**
 * What the cache keeps of an answer: the upstream's own answer (its `id` and `created` are
 * replaced when replayed), so that a hit is the miss it replays, field for field — as JSON (`json`) or as the stream's
 * payloads (`chunks`; a request's `stream` is part of its key, so a hit is answered the way the
 * miss was).
 */
export interface CachedAnswer {
  kind: "chat" | "completion";
  model: string;
  promptTokens: number;
  completionTokens: number;
  /** How the upstream's ids begin ("chatcmpl-", "cmpl-"): a replay gets a fresh id like them. */
  idPrefix: string;
  /** The JSON answer. */
  json?: Record<string, unknown>;
  /**
   * The stream's payloads in order ([DONE] aside), usage chunk included. A string stands for
   * the previous object payload with its one choice's text replaced by that string: a stream of
   * per-token chunks costs little more than its text.
   */
  chunks?: (Record<string, unknown> | string)[];
}

export interface ResponseCache {
  get(key: string): Promise<CachedAnswer | undefined>;
  /** Stores an answer; resolves false (nothing stored) when it is over the entry byte bound. */
  set(key: string, value: CachedAnswer): Promise<boolean>;
  /** Removes every entry; resolves with how many were removed. */
  purge(): Promise<number>;
  size(): Promise<number>;
}

/**
 * Fields that do not change the answer. `stream` does (JSON or payloads), and so is part of the
 * key; `stream_options` only decides whether the usage chunk is passed on, which a replay does
 * per request.
 */
const TRANSPORT = new Set(["stream_options", "user"]);
/** Bumped when CachedAnswer changes: entries of another format (Redis) are never read. */
const FORMAT = "v2";

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
  const text = JSON.stringify([FORMAT, scope, path, canonical(kept)]);
  return createHash("sha256").update(text).digest("hex");
}

type Json = Record<string, unknown>;

/** The one choice's text field of a payload (`delta.content` or `text`), or undefined. */
function textOf(kind: CachedAnswer["kind"], chunk: Json): string | undefined {
  const choices = chunk.choices;
  if (!Array.isArray(choices) || choices.length !== 1) return undefined;
  const choice = choices[0] as Json;
  const value = kind === "chat" ? (choice.delta as Json | undefined)?.content : choice.text;
  return typeof value === "string" ? value : undefined;
}

/** `chunk` with its one choice's text set to `text` (a copy). */
function withText(kind: CachedAnswer["kind"], chunk: Json, text: string): Json {
  const choice = { ...((chunk.choices as Json[])[0] as Json) };
  if (kind === "chat") choice.delta = { ...(choice.delta as Json), content: text };
  else choice.text = text;
  return { ...chunk, choices: [choice] };
}

/** "chatcmpl-" of "chatcmpl-3f2a…"; by kind when the upstream's id has no such prefix. */
function idPrefixOf(kind: CachedAnswer["kind"], id: unknown): string {
  const match = typeof id === "string" ? /^[A-Za-z]+-/.exec(id) : null;
  return match ? match[0] : kind === "chat" ? "chatcmpl-" : "cmpl-";
}

interface Counted {
  kind: CachedAnswer["kind"];
  model: string;
  promptTokens: number;
  completionTokens: number;
}

/** The entry for an upstream JSON answer. */
export function jsonAnswer(counted: Counted, answer: Json): CachedAnswer {
  return { ...counted, idPrefix: idPrefixOf(counted.kind, answer.id), json: answer };
}

/** The entry for an upstream stream's payloads (every one, in order, [DONE] aside). */
export function streamAnswer(counted: Counted, payloads: Json[]): CachedAnswer {
  const chunks: (Json | string)[] = [];
  let template: string | undefined;
  for (const payload of payloads) {
    const chunk = payload;
    const text = textOf(counted.kind, chunk);
    const shape =
      text === undefined ? undefined : JSON.stringify(withText(counted.kind, chunk, ""));
    if (text !== undefined && shape === template) {
      chunks.push(text);
    } else {
      chunks.push(chunk);
      template = shape;
    }
  }
  return { ...counted, idPrefix: idPrefixOf(counted.kind, payloads[0]?.id), chunks };
}

/** A fresh id in the upstream's style and the time of the replay. */
function identity(a: CachedAnswer): { id: string; created: number } {
  return {
    id: `${a.idPrefix}${randomUUID().replaceAll("-", "")}`,
    created: Math.floor(Date.now() / 1000),
  };
}

/**
 * The JSON answer replaying a cached entry: the miss's own answer with a new id and time (in
 * their places: the keys keep their order).
 */
export function answerJson(a: CachedAnswer): Json {
  return { ...(a.json ?? {}), ...identity(a) };
}

/**
 * The chunks replaying a cached stream (ending in [DONE]), with a new id and time;
 * the usage-only chunk is passed on only when the request asked for it (`include_usage`), as on
 * a miss.
 */
export function answerEvents(a: CachedAnswer, includeUsage: boolean): Chunk[] {
  const fresh = identity(a);
  const out: Chunk[] = [];
  let previous: Json = {};
  for (const item of a.chunks ?? []) {
    const chunk = typeof item === "string" ? withText(a.kind, previous, item) : item;
    previous = chunk;
    const usageOnly =
      chunk.usage != null && Array.isArray(chunk.choices) && chunk.choices.length === 0;
    if (usageOnly && !includeUsage) continue;
    const json = { ...chunk, ...fresh };
    out.push({ data: JSON.stringify(json), json: json as ChunkJson });
  }
  out.push(DONE);
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
