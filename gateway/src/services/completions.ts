import type { FastifyBaseLogger } from "fastify";
import type { CacheConfig } from "../config.js";
import { HttpError } from "../errors.js";
import { SseParser } from "../sse.js";
import {
  answerEvents,
  answerJson,
  type CachedAnswer,
  cacheKey,
  isCacheable,
  jsonAnswer,
  type ResponseCache,
  streamAnswer,
} from "./cache.js";
import { UNBOUNDED } from "./limit-store.js";
import type { Admission, Caller, LimitService } from "./limits.js";
import {
  BrokenAnswer,
  type LlmClient,
  type Upstream,
  type UpstreamResponse,
  upstreamError,
} from "./llm-client.js";
import { newRow, recordUsage } from "./metering.js";
import type { Metrics } from "./metrics.js";
import { failureOutcome } from "./outcome.js";
import type { UsageRow, UsageService } from "./usage.js";

export interface CallContext extends Caller {
  /** The public route, for analytics and metrics. */
  route: string;
  requestId: string;
  /**
   * Aborts when the client goes away, or with an HttpError reason when the gateway ends
   * the call (the caller lost access, shutdown).
   */
  signal: AbortSignal;
  log: FastifyBaseLogger;
  /** Tokens the call may generate, all choices together (null: no cap); set on admission. */
  tokens?: number | null;
}

export type CompletionPath = "/v1/chat/completions" | "/v1/completions";

/** A started completion: a JSON answer, or the `data:` payloads of a stream. */
export type Started =
  | { kind: "json"; status: number; body: string; headers: Record<string, string> }
  | { kind: "stream"; headers: Record<string, string>; events: AsyncGenerator<string> };

interface ChunkJson {
  model?: string;
  error?: unknown;
  choices?: {
    delta?: { role?: string | null; content?: string | null };
    text?: string | null;
    finish_reason?: string | null;
  }[];
  usage?: { prompt_tokens?: number; completion_tokens?: number };
}

/** A stream whose first event was read before any byte went to the client. */
interface Peeked {
  first: string;
  events: AsyncGenerator<string>;
}
/** What LlmClient.send reads before handing the answer on: a whole body, or a peeked stream. */
type Head = string | Peeked;

/** The `data:` payloads of an SSE byte stream. */
async function* dataEvents(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  const parser = new SseParser();
  for await (const chunk of chunks) yield* parser.push(chunk);
}

async function* prepend(first: string, rest: AsyncGenerator<string>): AsyncGenerator<string> {
  yield first;
  yield* rest;
}

export interface CompletionDeps {
  llm: LlmClient;
  limits: LimitService;
  usage: UsageService;
  metrics: Metrics;
  cache: ResponseCache;
  cacheConfig: CacheConfig;
}

/** A generous estimate of a request's prompt tokens (about 3 bytes a token, plus framing). */
export function estimatePromptTokens(body: Record<string, unknown>): number {
  const messages = Array.isArray(body.messages) ? body.messages : [];
  const text = JSON.stringify(body.messages ?? body.prompt ?? "");
  return Math.ceil(Buffer.byteLength(text) / 3) + 4 * messages.length + 8;
}

/**
 * What a request may generate: tokens per choice (undefined: no cap and none asked) and
 * the number of choices. llm-server honours `max_completion_tokens` over `max_tokens`
 * (chat), so the larger of the two is what is checked against the caller's per-request
 * cap, which covers every choice together; the caller's own value is kept, or the cap
 * shared by the choices when none was sent. The route schemas already refused wrong types
 * and ranges (`n` an integer from 1 to 16, token fields integers >= 1 or null).
 */
export function tokenRequest(
  path: CompletionPath,
  body: Record<string, unknown>,
  cap: number,
): { maxTokens: number | undefined; choices: number } {
  const choices = (body.n as number | undefined) ?? 1;
  const fields = path === "/v1/chat/completions" ? TOKEN_FIELDS : TOKEN_FIELDS.slice(0, 1);
  const asked = fields
    .map((f) => body[f] as number | null | undefined)
    .filter((v): v is number => v !== undefined && v !== null);
  const requested = asked.length > 0 ? Math.max(...asked) : undefined;
  if (cap > 0 && requested !== undefined && requested * choices > cap) {
    const what =
      choices > 1
        ? `${requested} tokens for each of ${choices} choices`
        : `max_tokens ${requested}`;
    throw new HttpError(
      400,
      "MAX_TOKENS_EXCEEDED",
      `${what} is over your limit of ${cap} tokens per request`,
    );
  }
  if (requested !== undefined || cap === 0) return { maxTokens: requested, choices };
  const share = Math.floor(cap / choices);
  if (share < 1) {
    throw new HttpError(
      400,
      "MAX_TOKENS_EXCEEDED",
      `n ${choices} is over your limit of ${cap} tokens per request (at least 1 token per choice)`,
    );
  }
  return { maxTokens: share, choices };
}

const TOKEN_FIELDS = ["max_tokens", "max_completion_tokens"] as const;

/**
 * The body with every token-limit field llm-server reads set to `limit` (chat: both
 * `max_tokens` and `max_completion_tokens`, so whichever it honours is the clamped one);
 * unchanged when `limit` is undefined.
 */
function withMaxTokens(
  path: CompletionPath,
  body: Record<string, unknown>,
  limit: number | undefined,
): Record<string, unknown> {
  if (limit === undefined) return { ...body };
  if (path === "/v1/completions") return { ...body, max_tokens: limit };
  return { ...body, max_tokens: limit, max_completion_tokens: limit };
}

/**
 * The text of a chunk that carries one generated token, or null for any other chunk (chat's
 * opening `role` chunk, a `finish_reason` chunk without a token, the usage chunk). llm-server sends every
 * token it counts in `usage`, the end-of-generation token too, each in a chunk of its own,
 * some with empty text: a stream cut before its usage chunk is billed one token per such
 * chunk, which is what the client received.
 */
function tokenOf(json: ChunkJson): string | null {
  const c = json.choices?.[0];
  if (!c) return null;
  // Chat: the finish chunk's delta has no content (null); other servers may send the last
  // token with the finish_reason.
  if (c.delta) return c.delta.role || typeof c.delta.content !== "string" ? null : c.delta.content;
  // Completions: the finish chunk has empty text.
  if (typeof c.text !== "string" || (c.finish_reason && c.text === "")) return null;
  return c.text;
}

/**
 * Every LLM completion goes through here: per-request max_tokens cap, the response cache,
 * quota admission (reserve, then settle the real usage), the balanced upstream call with
 * retry before the first byte, a stream cut when it crosses the reservation, and one
 * usage row plus metrics per request.
 */
export class CompletionService {
  constructor(private readonly d: CompletionDeps) {}

  async start(
    ctx: CallContext,
    path: CompletionPath,
    body: Record<string, unknown>,
  ): Promise<Started> {
    const t0 = Date.now();
    const kind = path === "/v1/chat/completions" ? "chat" : "completion";
    const stream = body.stream === true;
    const wantsUsage =
      (body.stream_options as { include_usage?: unknown } | undefined)?.include_usage === true;
    const row = newRow(ctx, t0, typeof body.model === "string" ? body.model : null);
    const finish = (status: number, outcome: string, errorCode: string | null = null) => {
      row.durationMs = Date.now() - t0;
      row.status = status;
      row.outcome = outcome;
      row.errorCode = errorCode;
      this.record(row, ctx.log);
    };

    try {
      const subjects = await this.d.limits.subjects(ctx);
      const { maxTokens, choices } = tokenRequest(path, body, this.d.limits.maxTokens(subjects));
      ctx.tokens = maxTokens === undefined ? null : maxTokens * choices;

      // The cache: a hit costs no quota by default and never reaches a server.
      const cacheable = this.d.cacheConfig.enabled && isCacheable(body);
      const scope = this.d.cacheConfig.scope === "shared" ? "shared" : `user:${ctx.userId}`;
      const key = cacheable ? cacheKey(scope, path, withMaxTokens(path, body, maxTokens)) : "";
      const hit = cacheable ? await this.d.cache.get(key).catch(() => undefined) : undefined;
      if (cacheable) this.d.metrics.cache.inc({ result: hit ? "hit" : "miss" });
      if (hit) return await this.serveHit(ctx, hit, row, { stream, wantsUsage, finish });

      const promptEstimate = estimatePromptTokens(body);
      const admission = await this.d.limits.admit(ctx, {
        subjects,
        tokens: maxTokens === undefined ? UNBOUNDED : promptEstimate + maxTokens * choices,
        minTokens: promptEstimate + choices,
        concurrent: true,
      });
      const budget =
        admission.reserved >= UNBOUNDED ? UNBOUNDED : admission.reserved - promptEstimate;
      // A stream is cut when it crosses the budget; a JSON answer cannot be, so what every
      // choice may produce is kept within it.
      let limit = maxTokens;
      if (!stream && budget < UNBOUNDED) {
        const perChoice = Math.max(1, Math.floor(budget / choices));
        limit = Math.min(maxTokens ?? perChoice, perChoice);
      }
      const upstreamBody = withMaxTokens(path, body, limit);
      if (stream)
        upstreamBody.stream_options = { ...(body.stream_options as object), include_usage: true };
      const headers: Record<string, string> = cacheable ? { "x-cache": "MISS" } : {};

      let up: Upstream<Head>;
      try {
        up = await this.d.llm.send(
          {
            method: "POST",
            path,
            body: upstreamBody,
            clientId: ctx.userId,
            requestId: ctx.requestId,
            signal: ctx.signal,
          },
          (res) => (res.ok && stream ? this.peek(res, ctx.signal) : res.text()),
        );
      } catch (err) {
        await this.d.limits.settle(admission, 0);
        throw err;
      }
      row.server = up.server;
      if (typeof up.head === "string") {
        const text = up.head;
        up.release(up.res.status >= 500);
        row.ttftMs = Date.now() - t0;
        let used = 0;
        if (up.res.ok) {
          const json = JSON.parse(text) as ChunkJson & {
            choices?: { message?: { content?: string } }[];
          };
          row.model = json.model ?? row.model;
          row.promptTokens = json.usage?.prompt_tokens ?? 0;
          row.completionTokens = json.usage?.completion_tokens ?? 0;
          used = row.promptTokens + row.completionTokens;
          const c = json.choices?.[0];
          const answerText = c?.message?.content ?? c?.text;
          if (cacheable && typeof answerText === "string" && c?.finish_reason) {
            this.store(
              key,
              jsonAnswer(
                {
                  kind,
                  model: row.model ?? "",
                  promptTokens: row.promptTokens,
                  completionTokens: row.completionTokens,
                },
                json as Record<string, unknown>,
              ),
            );
          }
        }
        row.quotaTokens = used;
        await this.d.limits.settle(admission, used);
        if (up.res.status >= 500) throw upstreamError(up.res.status, text);
        finish(up.res.status, up.res.ok ? "ok" : "error", up.res.ok ? null : "UPSTREAM_REJECTED");
        return { kind: "json", status: up.res.status, body: text, headers };
      }
      return {
        kind: "stream",
        headers,
        events: this.relay(ctx, up, up.head, admission, budget, row, {
          kind,
          key: cacheable ? key : null,
          wantsUsage,
          t0,
          promptEstimate,
          finish,
        }),
      };
    } catch (err) {
      const o = failureOutcome(err, ctx.signal);
      if (o.outcome === "rejected")
        this.d.metrics.rejections.inc({ limit: o.errorCode?.toLowerCase() ?? "" });
      finish(o.status, o.outcome, o.errorCode);
      throw err;
    }
  }

  private async serveHit(
    ctx: CallContext,
    hit: CachedAnswer,
    row: UsageRow,
    o: { stream: boolean; wantsUsage: boolean; finish: (s: number, o: string) => void },
  ): Promise<Started> {
    const cost = this.d.cacheConfig.hitsCostQuota ? hit.promptTokens + hit.completionTokens : 0;
    const admission = await this.d.limits.admit(ctx, {
      tokens: cost,
      minTokens: cost,
      concurrent: false,
    });
    await this.d.limits.settle(admission, cost);
    Object.assign(row, {
      model: hit.model,
      promptTokens: hit.promptTokens,
      completionTokens: hit.completionTokens,
      quotaTokens: cost,
      cacheHit: 1,
      ttftMs: Date.now() - row.ts,
    });
    o.finish(200, "ok");
    const headers = { "x-cache": "HIT" };
    if (!o.stream)
      return { kind: "json", status: 200, body: JSON.stringify(answerJson(hit)), headers };
    const events = answerEvents(hit, o.wantsUsage);
    return {
      kind: "stream",
      headers,
      events: (async function* () {
        yield* events;
      })(),
    };
  }

  /**
   * Waits for a stream's first event while the call can still go to another server: a
   * stream that ends or breaks before it is a broken answer (see LlmClient.send).
   */
  private async peek(res: UpstreamResponse, signal: AbortSignal): Promise<Head> {
    const events = dataEvents(this.d.llm.chunks(res, signal));
    const first = await events.next();
    if (first.done) throw new BrokenAnswer("the stream ended before its first event");
    return { first: first.value, events };
  }

  /** Relays a stream's payloads, counting tokens; cuts it when it crosses the reservation. */
  private async *relay(
    ctx: CallContext,
    up: Upstream<Head>,
    head: Peeked,
    admission: Admission,
    budget: number,
    row: UsageRow,
    o: {
      kind: "chat" | "completion";
      key: string | null;
      wantsUsage: boolean;
      t0: number;
      promptEstimate: number;
      finish: (s: number, o: string, c?: string | null) => void;
    },
  ): AsyncGenerator<string> {
    let counted = 0;
    let finishReason: string | null = null;
    let usage: ChunkJson["usage"] | undefined;
    let failed: string | null = null;
    let cut = false;
    let sawDone = false;
    // Every payload as received, for the cache (a hit replays them).
    const payloads: Record<string, unknown>[] = [];
    try {
      for await (const data of prepend(head.first, head.events)) {
        if (data === "[DONE]") {
          sawDone = true;
          yield data;
          continue;
        }
        const json = JSON.parse(data) as ChunkJson;
        if (o.key) payloads.push(json as Record<string, unknown>);
        if (json.error) failed = "UPSTREAM_ERROR";
        if (json.model) row.model = json.model;
        if (json.usage) usage = json.usage;
        const piece = tokenOf(json);
        if (piece !== null) {
          if (counted + 1 > budget) {
            cut = true;
            break;
          }
          counted += 1;
          row.ttftMs ??= Date.now() - o.t0;
        }
        finishReason = json.choices?.[0]?.finish_reason ?? finishReason;
        if (json.usage && !o.wantsUsage && (json.choices?.length ?? 0) === 0) continue;
        yield data;
      }
    } catch (err) {
      failed = err instanceof HttpError ? err.code : "UPSTREAM_ERROR";
      throw err;
    } finally {
      up.release(failed !== null);
      row.promptTokens = usage?.prompt_tokens ?? up.res.promptTokens ?? o.promptEstimate;
      row.completionTokens = cut || !usage ? counted : (usage.completion_tokens ?? counted);
      row.quotaTokens = row.promptTokens + row.completionTokens;
      // Ended before its end: the client left (499), or the gateway ended it (its error).
      const stopped = ctx.signal.aborted && !sawDone ? failureOutcome(null, ctx.signal) : null;
      // The usage row first: it is the record of what was served, whatever the counters'
      // store does next (settle is best-effort and never throws).
      if (cut) o.finish(429, "cut", "TOKENS_PER_DAY");
      else if (failed) o.finish(502, "error", failed);
      else if (stopped) o.finish(stopped.status, stopped.outcome, stopped.errorCode);
      else o.finish(200, "ok");
      if (o.key && !cut && !failed && !stopped && sawDone && finishReason) {
        const counted = {
          kind: o.kind,
          model: row.model ?? "",
          promptTokens: row.promptTokens,
          completionTokens: row.completionTokens,
        };
        this.store(o.key, streamAnswer(counted, payloads));
      }
      await this.d.limits.settle(admission, row.quotaTokens);
    }
    if (cut) {
      throw new HttpError(
        429,
        "TOKENS_PER_DAY",
        "Daily token quota reached: the answer was cut; the quota resets at 00:00 UTC",
      );
    }
    // Ended by the gateway: the client gets that error in-band.
    const reason: unknown = ctx.signal.reason;
    if (!sawDone && reason instanceof HttpError) throw reason;
  }

  private store(key: string, answer: CachedAnswer): void {
    const stores = this.d.metrics.cacheStores;
    this.d.cache.set(key, answer).then(
      (stored) => stores.inc({ result: stored ? "stored" : "too_large" }),
      () => stores.inc({ result: "error" }),
    );
  }

  private record(row: UsageRow, log: FastifyBaseLogger): void {
    recordUsage(this.d, row, log);
  }
}
