import type { CacheConfig } from "../config.js";
import { HttpError } from "../errors.js";
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
import { type Chunk, type ChunkJson, sseChunks, tokenOf } from "./chunks.js";
import { CompletionBody, type CompletionPath } from "./completion-body.js";
import type { Subject } from "./limit-store.js";
import { UNBOUNDED } from "./limit-store.js";
import type { LimitService } from "./limits.js";
import {
  BrokenAnswer,
  type LlmClient,
  type UpstreamResponse,
  upstreamError,
} from "./llm-client.js";
import type { CallContext, Meter, Metering } from "./metering.js";
import type { Metrics } from "./metrics.js";
import type { ModelGate } from "./model-gate.js";
import type { ModelRoutes, Route, Routed } from "./routing.js";
import { answerUsage, renamed } from "./usage-count.js";

export { estimatePromptTokens, tokenRequest } from "./completion-body.js";
export type { CompletionPath };

/** A started completion: a JSON answer, or the chunks of a stream. */
export type Started =
  | { kind: "json"; status: number; body: string; headers: Record<string, string> }
  | { kind: "stream"; headers: Record<string, string>; events: AsyncGenerator<Chunk> };

/** A stream whose first chunk was read before any byte went to the client. */
interface Peeked {
  first: Chunk;
  events: AsyncGenerator<Chunk>;
}
/** What LlmClient.send reads before handing the answer on: a whole body, or a peeked stream. */
type Head = string | Peeked;

export interface CompletionDeps {
  /** The model's pool (and fallbacks) of each request. */
  router: ModelRoutes;
  limits: LimitService;
  metering: Metering;
  metrics: Metrics;
  cache: ResponseCache;
  cacheConfig: CacheConfig;
  /** Who may use which model, and per-model quotas. */
  gate: ModelGate;
}

/** What the stages of one completion share. */
interface Call {
  ctx: CallContext;
  body: CompletionBody;
  /** The model asked for and its fallbacks (see ModelRouter.resolve). */
  route: Route;
  /** The public model asked for (canonical name); null without a routing file. */
  model: string | null;
  meter: Meter;
  subjects: Subject[];
  kind: "chat" | "completion";
  /** Tokens per choice the caller may have (undefined: no cap and none asked). */
  maxTokens: number | undefined;
  choices: number;
  /** The response cache's key; null when the request is not cacheable. */
  key: string | null;
  /** The prompt's estimated tokens and what the reservation leaves for the answer. */
  promptEstimate: number;
  budget: number;
}

async function* replay(chunks: Chunk[]): AsyncGenerator<Chunk> {
  yield* chunks;
}

/**
 * Every LLM completion goes through here, in stages: plan (the per-request max_tokens cap,
 * the cache key), the response cache, quota admission (reserve, then settle the real usage),
 * the balanced upstream call with retry before the first byte, then the JSON answer or the
 * relayed stream (cut when it crosses the reservation); one usage row plus metrics each.
 */
export class CompletionService {
  constructor(private readonly d: CompletionDeps) {}

  async start(
    ctx: CallContext,
    path: CompletionPath,
    fields: Record<string, unknown>,
  ): Promise<Started> {
    const meter = this.d.metering.open(ctx, null);
    try {
      // An unknown model is a 404 before anything is counted or sent.
      const route = this.d.router.resolve(fields.model);
      meter.row.model = route.name ?? (typeof fields.model === "string" ? fields.model : null);
      const call = await this.plan(ctx, new CompletionBody(path, fields), meter, route);
      const hit = await this.lookup(call);
      if (hit) return await this.serveHit(call, hit);
      const limit = await this.admit(call);
      const headers: Record<string, string> = call.key ? { "x-cache": "MISS" } : {};
      const up = await this.forward(call, limit);
      meter.row.server = up.server;
      // After a fallback, the model that answers is another one.
      if (up.model !== null) meter.row.model = up.model;
      const { head } = up;
      if (typeof head === "string") return await this.answer(call, { ...up, head }, headers);
      return { kind: "stream", headers, events: this.relay(call, up, head) };
    } catch (err) {
      await meter.fail(err);
      throw err;
    }
  }

  /**
   * The caller's limits and token request, and the cache key when the request is cacheable.
   * A model the caller may not use is refused here, before the cache could answer for it.
   */
  private async plan(
    ctx: CallContext,
    body: CompletionBody,
    meter: Meter,
    route: Route,
  ): Promise<Call> {
    const [own, perModel] = await Promise.all([
      this.d.limits.subjects(ctx),
      // The catalog's name when there is one (aliases, case and the default resolved).
      this.d.gate.check(ctx, route.name ?? body.fields.model),
    ]);
    const subjects = [...own, ...perModel];
    // Fallbacks the caller may not use are skipped (their rules apply as to a request for them).
    const allowed = await this.allowedRoute(ctx, route);
    const { maxTokens, choices } = body.tokenRequest(this.d.limits.maxTokens(subjects));
    ctx.tokens = maxTokens === undefined ? null : maxTokens * choices;
    const { cacheConfig } = this.d;
    const cacheable = cacheConfig.enabled && isCacheable(body.fields);
    const scope = cacheConfig.scope === "shared" ? "shared" : `user:${ctx.userId}`;
    return {
      ctx,
      body,
      route: allowed,
      model: route.name,
      meter,
      subjects,
      kind: body.path === "/v1/chat/completions" ? "chat" : "completion",
      maxTokens,
      choices,
      key: cacheable ? cacheKey(scope, body.path, body.withMaxTokens(maxTokens)) : null,
      promptEstimate: 0,
      budget: UNBOUNDED,
    };
  }

  /**
   * `route` without the fallbacks `ctx` may not use or holds a per-model quota on (the model
   * asked for is checked already).
   */
  private async allowedRoute(ctx: CallContext, route: Route): Promise<Route> {
    const [first, ...rest] = route.chain;
    if (!first || rest.length === 0) return route;
    const ok = await Promise.all(
      rest.map((p) => (p.name === null ? true : this.d.gate.mayFallBackTo(ctx, p.name))),
    );
    return { ...route, chain: [first, ...rest.filter((_, i) => ok[i])] };
  }

  /** The cached answer, if any (a cache that fails is a miss). */
  private async lookup(call: Call): Promise<CachedAnswer | undefined> {
    if (call.key === null) return undefined;
    const hit = await this.d.cache.get(call.key).catch(() => undefined);
    this.d.metrics.cache.inc({ result: hit ? "hit" : "miss" });
    return hit;
  }

  /** A cache hit: it costs no quota by default and never reaches a server. */
  private async serveHit(call: Call, hit: CachedAnswer): Promise<Started> {
    const { meter, body } = call;
    const cost = this.d.cacheConfig.hitsCostQuota ? hit.promptTokens + hit.completionTokens : 0;
    await meter.admit({
      tokens: cost,
      minTokens: cost,
      concurrent: false,
      subjects: call.subjects,
    });
    await meter.settle(cost);
    Object.assign(meter.row, {
      model: hit.model,
      promptTokens: hit.promptTokens,
      completionTokens: hit.completionTokens,
      quotaTokens: cost,
      cacheHit: 1,
    });
    meter.firstToken();
    meter.finish(200, "ok");
    const headers = { "x-cache": "HIT" };
    if (!body.stream)
      return { kind: "json", status: 200, body: JSON.stringify(answerJson(hit)), headers };
    return { kind: "stream", headers, events: replay(answerEvents(hit, body.wantsUsage)) };
  }

  /**
   * Reserves the call's tokens; returns the max_tokens to send. A stream is cut when it
   * crosses the budget; a JSON answer cannot be, so what every choice may produce is kept
   * within it.
   */
  private async admit(call: Call): Promise<number | undefined> {
    const { maxTokens, choices } = call;
    const estimate = call.body.promptTokens();
    const admission = await call.meter.admit({
      subjects: call.subjects,
      tokens: maxTokens === undefined ? UNBOUNDED : estimate + maxTokens * choices,
      minTokens: estimate + choices,
      concurrent: true,
    });
    call.promptEstimate = estimate;
    call.budget = admission.reserved >= UNBOUNDED ? UNBOUNDED : admission.reserved - estimate;
    if (call.body.stream || call.budget >= UNBOUNDED) return maxTokens;
    const perChoice = Math.max(1, Math.floor(call.budget / choices));
    return Math.min(maxTokens ?? perChoice, perChoice);
  }

  /**
   * The balanced upstream call through the model's pool (then its fallbacks), its body
   * serialised once per upstream model name; a stream's first chunk is read.
   */
  private forward(call: Call, limit: number | undefined): Promise<Routed<Head>> {
    const { ctx, body } = call;
    return this.d.router.send(
      call.route,
      {
        method: "POST",
        path: body.path,
        json: (target) => body.upstreamJson(limit, target),
        stream: body.stream,
        model: typeof body.fields.model === "string" ? body.fields.model : undefined,
        clientId: ctx.userId,
        requestId: ctx.requestId,
        signal: ctx.signal,
      },
      (res, llm) => (res.ok && body.stream ? this.peek(llm, res, ctx.signal) : res.text()),
    );
  }

  /**
   * Waits for a stream's first chunk while the call can still go to another server: a
   * stream that ends or breaks before it is a broken answer (see LlmClient.send).
   */
  private async peek(llm: LlmClient, res: UpstreamResponse, signal: AbortSignal): Promise<Head> {
    const events = sseChunks(llm.chunks(res, signal));
    const first = await events.next();
    if (first.done) throw new BrokenAnswer("the stream ended before its first event");
    return { first: first.value, events };
  }

  /** A JSON answer: counted, settled, cached when complete; a 5xx becomes the client's error. */
  private async answer(
    call: Call,
    up: Routed<string>,
    headers: Record<string, string>,
  ): Promise<Started> {
    const { meter } = call;
    const { status, ok } = up.res;
    up.release(status >= 500);
    meter.firstToken();
    const text = ok ? this.countAnswer(call, up) : up.head;
    meter.row.quotaTokens = meter.row.promptTokens + meter.row.completionTokens;
    await meter.settle(meter.row.quotaTokens);
    if (status >= 500) throw upstreamError(status, up.head, up.target, up.res.retryAfter);
    // Another server's refusal in the gateway's envelope (llm-server's is OpenAI's already).
    if (!ok && up.target.kind === "openai") throw upstreamError(status, up.head, up.target);
    meter.finish(status, ok ? "ok" : "error", ok ? null : "UPSTREAM_REJECTED");
    return { kind: "json", status, body: text, headers };
  }

  /** Counts a JSON answer (estimated when upstream reports no usage); its text, renamed. */
  private countAnswer(call: Call, up: Routed<string>): string {
    const { row } = call.meter;
    const parsed = JSON.parse(up.head) as ChunkJson;
    // The answer names the public model that gave it, not the upstream's name for it.
    const json = up.model === null ? parsed : { ...parsed, model: up.model };
    row.model = json.model ?? row.model;
    Object.assign(row, answerUsage(json, up.res.promptTokens, call.promptEstimate));
    const c = json.choices?.[0];
    const answerText = c?.message?.content ?? c?.text;
    if (call.key && typeof answerText === "string" && c?.finish_reason) {
      this.store(call.key, jsonAnswer(this.counted(call), json as Record<string, unknown>));
    }
    return json === parsed ? up.head : JSON.stringify(json);
  }

  /** Relays a stream's chunks, counting tokens; cuts it when it crosses the reservation. */
  private async *relay(call: Call, up: Routed<Head>, head: Peeked): AsyncGenerator<Chunk> {
    const tally = new StreamTally(call);
    const { events } = head;
    try {
      // The peeked first chunk, then the rest (no extra generator in between: this is the
      // per-chunk hot path).
      let chunk: Chunk | undefined = head.first;
      const model = up.model;
      while (chunk !== undefined) {
        // Named for the public model (only when the upstream calls it something else).
        if (model !== null && chunk.json?.model !== undefined && chunk.json.model !== model) {
          chunk = renamed(chunk, model);
        }
        const next = tally.see(chunk);
        if (next === CUT) break;
        if (next === RELAY) yield chunk;
        const read: IteratorResult<Chunk> = await events.next();
        chunk = read.done ? undefined : read.value;
      }
    } catch (err) {
      tally.failed = err instanceof HttpError ? err.code : "UPSTREAM_ERROR";
      throw err;
    } finally {
      // Stops the upstream read when the stream ends early (cut, client gone, failure).
      await events.return(undefined);
      up.release(tally.failed !== null);
      await this.endStream(call, up, tally);
    }
    if (tally.cut) {
      throw new HttpError(
        429,
        "TOKENS_PER_DAY",
        "Daily token quota reached: the answer was cut; the quota resets at 00:00 UTC",
      );
    }
    // Ended by the gateway: the client gets that error in-band.
    const reason: unknown = call.ctx.signal.reason;
    if (!tally.sawDone && reason instanceof HttpError) throw reason;
  }

  /**
   * A stream's usage row (first: it is the record of what was served, whatever the counters'
   * store does next), its cache entry when it completed, and its settle.
   */
  private async endStream(call: Call, up: Routed<Head>, t: StreamTally): Promise<void> {
    const { meter } = call;
    const { row } = meter;
    row.promptTokens = t.usage?.prompt_tokens ?? up.res.promptTokens ?? call.promptEstimate;
    row.completionTokens = t.cut || !t.usage ? t.counted : (t.usage.completion_tokens ?? t.counted);
    // No usage from upstream and no prompt count either: the prompt is our estimate.
    row.estimated = !t.usage && up.res.promptTokens === null ? 1 : 0;
    row.quotaTokens = row.promptTokens + row.completionTokens;
    // Ended before its end: the client left (499), or the gateway ended it (its error).
    const stopped = t.sawDone ? null : meter.stopped();
    if (t.cut) meter.finish(429, "cut", "TOKENS_PER_DAY");
    else if (t.failed) meter.finish(502, "error", t.failed);
    else if (stopped) meter.finish(stopped.status, stopped.outcome, stopped.errorCode);
    else meter.finish(200, "ok");
    if (call.key && !t.cut && !t.failed && !stopped && t.sawDone && t.finishReason) {
      this.store(call.key, streamAnswer(this.counted(call), t.payloads));
    }
    await meter.settle(row.quotaTokens);
  }

  private counted(call: Call) {
    const { row } = call.meter;
    return {
      kind: call.kind,
      model: row.model ?? "",
      promptTokens: row.promptTokens,
      completionTokens: row.completionTokens,
    };
  }

  private store(key: string, answer: CachedAnswer): void {
    const stores = this.d.metrics.cacheStores;
    this.d.cache.set(key, answer).then(
      (stored) => stores.inc({ result: stored ? "stored" : "too_large" }),
      () => stores.inc({ result: "error" }),
    );
  }
}

const RELAY = 0;
const SKIP = 1;
const CUT = 2;

/** What a relayed stream has shown so far: tokens, usage, finish, failure, cut. */
class StreamTally {
  counted = 0;
  finishReason: string | null = null;
  usage: ChunkJson["usage"] | undefined;
  failed: string | null = null;
  cut = false;
  sawDone = false;
  /** Every payload as received, for the cache (a hit replays them). */
  readonly payloads: Record<string, unknown>[] = [];

  constructor(private readonly call: Call) {}

  /** Counts one chunk; says whether to relay it, skip it or cut the stream before it. */
  see(chunk: Chunk): typeof RELAY | typeof SKIP | typeof CUT {
    const { json } = chunk;
    if (json === null) {
      this.sawDone = true;
      return RELAY;
    }
    const { meter, key, budget } = this.call;
    if (key) this.payloads.push(json as Record<string, unknown>);
    if (json.error) this.failed = "UPSTREAM_ERROR";
    if (json.model) meter.row.model = json.model;
    if (json.usage) this.usage = json.usage;
    if (tokenOf(json) !== null) {
      if (this.counted + 1 > budget) {
        this.cut = true;
        return CUT;
      }
      this.counted += 1;
      meter.firstToken();
    }
    this.finishReason = json.choices?.[0]?.finish_reason ?? this.finishReason;
    // The usage-only chunk goes to the client only when it asked for it.
    const usageOnly = json.usage && (json.choices?.length ?? 0) === 0;
    return usageOnly && !this.call.body.wantsUsage ? SKIP : RELAY;
  }
}
