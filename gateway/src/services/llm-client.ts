import { Agent, type Dispatcher, request } from "undici";
import type { UpstreamTlsConfig } from "../config.js";
import { HttpError } from "../errors.js";
import { type Balancer, type Lease, noServerError } from "./balancer.js";
import {
  authorization,
  scrub,
  UPSTREAM_FAULT,
  type UpstreamTarget,
  upstreamPath,
} from "./upstream.js";

export interface LlmClientOptions {
  balancer: Balancer;
  token: string;
  /** Time allowed until upstream answers (headers), and until the first body chunk. */
  firstTokenTimeoutMs: number;
  /** Longest silence allowed between two chunks of a streamed body. */
  idleTimeoutMs: number;
  /**
   * Time allowed for the headers of a call llm-server answers at once (a stream, a GET):
   * past it the server counts as stalled and the call moves to the next one. A JSON
   * completion's headers come with its whole answer: those wait `firstTokenTimeoutMs`.
   */
  headersTimeoutMs: number;
  /** Counts each attempt per server and outcome (optional). */
  onAttempt?: (server: string, outcome: "ok" | "error" | "unreachable" | "stalled") => void;
  /** The connection pool (default: `upstreamAgent()`); its owner closes it. */
  dispatcher?: Dispatcher;
}

/**
 * Keep-alive connections to the llm-servers, reused request after request (one request at
 * a time on each: no pipelining). Their number follows the load; the balancer already
 * bounds the requests in flight per server (LLM_SERVER_MAX_OUTSTANDING, the queue).
 * An https:// server's certificate is verified (chain to `tls.ca`, or Node's public CAs,
 * and host name); `tls.cert`/`tls.key` answer a server asking for a client certificate.
 */
export function upstreamAgent(tls?: UpstreamTlsConfig): Agent {
  const { ca, cert, key } = tls ?? {};
  return new Agent({
    pipelining: 1,
    keepAliveTimeout: 4_000,
    connect: { noDelay: true, rejectUnauthorized: true, ca, cert, key },
  });
}

/** llm-server's answer as undici gives it: status, headers, body (a Node Readable). */
export interface UpstreamResponse {
  status: number;
  /** 2xx */
  ok: boolean;
  body: Dispatcher.ResponseData["body"];
  /**
   * The prompt's token count llm-server sends in `x-prompt-tokens` before the body
   * starts (null when absent): what a request cut short before its usage chunk is billed.
   */
  promptTokens: number | null;
  /** The upstream that answered. */
  target: UpstreamTarget;
  /** Its `Retry-After` header (seconds), when it sent one. */
  retryAfter: string | null;
  text(): Promise<string>;
}

function wrap(res: Dispatcher.ResponseData, target: UpstreamTarget): UpstreamResponse {
  const { statusCode, body } = res;
  const counted = Number(res.headers["x-prompt-tokens"]);
  const retry = res.headers["retry-after"];
  return {
    target,
    retryAfter: typeof retry === "string" && /^\d{1,4}$/.test(retry) ? retry : null,
    status: statusCode,
    ok: statusCode >= 200 && statusCode < 300,
    body,
    promptTokens: Number.isInteger(counted) && counted >= 0 ? counted : null,
    text: () => body.text(),
  };
}

export interface LlmCall {
  method: "GET" | "POST";
  path: string;
  /** A body to serialise as JSON; see `json`. */
  body?: unknown;
  /**
   * The body as JSON already (sent as is, instead of `body`), or made for the upstream
   * chosen (its model name and kind), once per distinct model and kind.
   */
  json?: string | ((target: UpstreamTarget) => string);
  /** The answer is a stream: llm-server sends its headers at once. */
  stream?: boolean;
  /** The model the call names as sent (without a routing file: to know whether it is loaded). */
  model?: string | undefined;
  /** The caller's user id, sent as X-Client-ID for fair scheduling. */
  clientId: string;
  requestId: string;
  /** Aborts the upstream request (client disconnect). */
  signal: AbortSignal;
  /** Servers not to try (already failed for this request). */
  exclude?: Set<string>;
}

/** An upstream answer, holding its server's slot until `release`. */
export interface Upstream<T = undefined> {
  res: UpstreamResponse;
  server: string;
  target: UpstreamTarget;
  release(failed: boolean): void;
  /** What `prepare` read of the answer before it was handed on. */
  head: T;
}

/**
 * Reads the start of an answer (its whole body, or a stream's first event) while the
 * call may still move to another server: nothing of the answer has reached the client
 * yet. A throw other than a timeout or an abort counts as a broken answer and sends the
 * call to the next server.
 */
export type Prepare<T> = (res: UpstreamResponse) => Promise<T>;

/** An answer that broke before its first byte could be relayed (retried elsewhere). */
export class BrokenAnswer extends Error {}

/** Why an upstream call stopped early. */
export class UpstreamTimeout extends HttpError {
  constructor(kind: "first-token" | "idle") {
    super(504, "UPSTREAM_TIMEOUT", `The model server did not answer in time (${kind} timeout)`);
  }
}

/** A server that accepted the call but sent no response headers in time (stalled). */
class StalledServer extends Error {}

function stalled(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === "UND_ERR_HEADERS_TIMEOUT";
}

export { noServerError };

const RETRYABLE = new Set([500, 502, 503, 504]);

/** The JSON text of a call's body (null: none); a body that cannot be serialized is a 400. */
function serialize(body: unknown): string | null {
  if (body === undefined) return null;
  try {
    return JSON.stringify(body);
  } catch (err) {
    throw Object.assign(
      new HttpError(400, "INVALID_BODY", "The request body cannot be sent to the model server"),
      { cause: err },
    );
  }
}

/**
 * The signal of one attempt: aborted with the call's own (the client left, the first-token
 * timeout) and, when `watch`, once the server's health check fails (`wentDown()` then true).
 * Plain listeners, not `AbortSignal.any`: Node keeps every signal made by `any` in
 * FinalizationRegistry cells and WeakRefs that outlive the request through young-generation
 * collections — at 500 requests/s they were most of what each scavenge had to copy, and
 * scavenges of 10–30 ms were the gateway's latency tail.
 */
function attemptSignal(call: AbortSignal, lease: Lease, watch: boolean) {
  const attempt = new AbortController();
  let down = false;
  if (call.aborted) attempt.abort(call.reason);
  else call.addEventListener("abort", () => attempt.abort(call.reason), { once: true });
  const unwatch = watch
    ? lease.onDown(() => {
        down = true;
        attempt.abort();
      })
    : () => undefined;
  return { signal: attempt.signal, wentDown: () => down, unwatch };
}

/**
 * Talks to llm-server: builds fresh headers (service token, request id, client id; never
 * the caller's cookies or Authorization), takes a server from the balancer, and retries
 * on another server when one is unreachable or answers 5xx — always before anything
 * reached the client.
 */
export class LlmClient {
  private readonly dispatcher: Dispatcher;
  private readonly token: string;

  constructor(private readonly options: LlmClientOptions) {
    this.dispatcher = options.dispatcher ?? upstreamAgent();
    this.token = options.token;
  }

  /**
   * Sends the call and resolves once upstream's headers arrive. The caller must
   * `release` the returned slot when the body is consumed.
   */
  async send(call: LlmCall): Promise<Upstream>;
  async send<T>(call: LlmCall, prepare: Prepare<T>): Promise<Upstream<T>>;
  async send<T>(call: LlmCall, prepare?: Prepare<T>): Promise<Upstream<T | undefined>> {
    const controller = new AbortController();
    const onAbort = () => controller.abort(call.signal.reason);
    call.signal.addEventListener("abort", onAbort, { once: true });
    const exclude = call.exclude ?? new Set<string>();
    // Serialized once, before any server is chosen: a body that cannot be (the caller's
    // fault) is a 400, never a failure of the server it would have gone to.
    const body = bodyFor(call);
    try {
      let lastError: unknown;
      const attempts = this.options.balancer.size;
      for (let i = 0; i < attempts; i++) {
        const lease = await this.options.balancer.acquire(exclude, controller.signal);
        exclude.add(lease.url);
        const timer = setTimeout(
          () => controller.abort(new UpstreamTimeout("first-token")),
          lease.target.firstTokenTimeoutMs ?? this.options.firstTokenTimeoutMs,
        );
        try {
          const outcome = await this.attempt(
            call,
            body,
            lease,
            controller,
            prepare,
            i < attempts - 1,
          );
          if ("up" in outcome) return outcome.up;
          lastError = outcome.retry;
        } finally {
          clearTimeout(timer);
        }
      }
      if (lastError instanceof BrokenAnswer) {
        throw Object.assign(new HttpError(502, "UPSTREAM_ERROR", "The model server failed"), {
          cause: lastError,
        });
      }
      if (lastError instanceof StalledServer) {
        const seconds = this.options.headersTimeoutMs / 1000;
        throw Object.assign(
          new HttpError(
            504,
            "UPSTREAM_TIMEOUT",
            `No model server answered in time: each sent no response headers within ${seconds} s`,
          ),
          { cause: lastError.cause },
        );
      }
      throw Object.assign(noServerError(), { cause: lastError });
    } finally {
      call.signal.removeEventListener("abort", onAbort);
    }
  }

  /** One try on one server: the answer, or why the call should move to the next server. */
  private async attempt<T>(
    call: LlmCall,
    body: (target: UpstreamTarget) => string | null,
    lease: Lease,
    controller: AbortController,
    prepare: Prepare<T> | undefined,
    canRetry: boolean,
  ): Promise<{ up: Upstream<T | undefined> } | { retry: unknown }> {
    let res: UpstreamResponse;
    // A JSON answer's wait cannot tell a long answer from a frozen server; the health check
    // can: when it fails, this attempt (nothing of it reached the client yet) moves on.
    const { signal, wentDown, unwatch } = attemptSignal(controller.signal, lease, canRetry);
    const serverDown = (err: unknown) =>
      this.moveOn(
        lease,
        "stalled",
        new StalledServer("health check failed while waiting", { cause: err }),
      );
    try {
      res = await this.post(call, body(lease.target), lease, signal);
    } catch (err) {
      unwatch();
      lease.release(!controller.signal.aborted);
      if (controller.signal.aborted) throw controller.signal.reason ?? err;
      if (wentDown()) return serverDown(err);
      // Accepted, then silent (a stopped process, a swap storm): nothing reached the
      // client yet, so another server may answer.
      if (stalled(err))
        return this.moveOn(
          lease,
          "stalled",
          new StalledServer("no response headers in time", { cause: err }),
        );
      return this.moveOn(lease, "unreachable", err);
    }
    const refused = lease.target.kind === "openai" && UPSTREAM_FAULT.has(res.status);
    if ((RETRYABLE.has(res.status) && canRetry) || refused) {
      unwatch();
      await res.body.dump().catch(() => undefined);
      lease.release(true);
      const failure = refusedUpstream(res.status);
      if (refused && !canRetry) {
        this.options.onAttempt?.(lease.url, "error");
        throw failure;
      }
      return this.moveOn(lease, "error", failure);
    }
    let head: T | undefined;
    try {
      // The first-token timer is still armed: it bounds the time to the first byte.
      head = prepare ? await prepare(res) : undefined;
    } catch (err) {
      unwatch();
      res.body.destroy();
      if (controller.signal.aborted) {
        lease.release(false);
        throw controller.signal.reason ?? err;
      }
      lease.release(true);
      if (wentDown()) return serverDown(err);
      if (err instanceof HttpError) throw err;
      // Headers came, then the answer broke before anything was relayed: this server
      // failed the request, and another one may still answer it.
      const broken = new BrokenAnswer("the answer broke before its first byte", { cause: err });
      return this.moveOn(lease, "error", broken);
    }
    // From here bytes may reach the client: no more moving on.
    unwatch();
    this.options.onAttempt?.(lease.url, res.status >= 500 ? "error" : "ok");
    return { up: { res, server: lease.url, target: lease.target, release: lease.release, head } };
  }

  /** Counts a failed attempt on `lease`'s server; the call moves to the next one. */
  private moveOn(lease: Lease, outcome: "error" | "unreachable" | "stalled", retry: unknown) {
    this.options.onAttempt?.(lease.url, outcome);
    return { retry };
  }

  /** Sends the call to the server at `url`; resolves with its response (headers read). */
  private async post(
    call: LlmCall,
    body: string | null,
    lease: Lease,
    signal: AbortSignal,
  ): Promise<UpstreamResponse> {
    const { target } = lease;
    // llm-server sends a stream's headers (and a GET's answer) at once — once the model is
    // loaded: one it reported not loaded may take a while first; a JSON completion's headers
    // come only with the whole answer.
    const early =
      (call.method === "GET" ||
        call.stream === true ||
        (call.body as { stream?: unknown } | undefined)?.stream === true) &&
      lease.loaded(target.model ?? call.model);
    const headers: Record<string, string> = {
      accept: "application/json, text/event-stream",
      "x-request-id": call.requestId,
    };
    const auth = authorization(target, this.token);
    if (auth) headers.authorization = auth;
    // The user id is for llm-server's fair scheduling, not for a third party.
    if (target.kind === "llm-server") headers["x-client-id"] = call.clientId;
    if (body !== null) headers["content-type"] = "application/json";
    const res = await request(`${target.url}${upstreamPath(target, call.path)}`, {
      method: call.method,
      headers,
      body,
      signal,
      dispatcher: target.dispatcher ?? this.dispatcher,
      // 0: no timeout of undici's own; the first-token timer bounds the wait.
      headersTimeout: early ? this.options.headersTimeoutMs : 0,
    });
    return wrap(res, target);
  }

  /**
   * Yields the chunks of a streamed body, aborting with UpstreamTimeout when the first
   * chunk or any later one takes too long (counted while waiting for it, not while the
   * caller handles the previous one). Stops at once, quietly, when `signal` aborts.
   */
  async *chunks(res: UpstreamResponse, signal: AbortSignal): AsyncGenerator<Uint8Array> {
    const body = res.body;
    let timeout: UpstreamTimeout | null = null;
    let waiting = true;
    let first = true;
    // One timer for the whole stream, re-armed per chunk (no promise or timer per chunk).
    const fire = () => {
      if (!waiting) {
        timer.refresh();
        return;
      }
      timeout = new UpstreamTimeout(first ? "first-token" : "idle");
      body.destroy(timeout);
    };
    let timer = setTimeout(
      fire,
      res.target.firstTokenTimeoutMs ?? this.options.firstTokenTimeoutMs,
    );
    const onAbort = () => body.destroy();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      if (signal.aborted) return;
      for await (const chunk of body as AsyncIterable<Buffer>) {
        waiting = false;
        if (first) {
          first = false;
          clearTimeout(timer);
          timer = setTimeout(fire, this.options.idleTimeoutMs);
        }
        yield chunk;
        waiting = true;
        timer.refresh();
      }
    } catch (err) {
      if (timeout) throw timeout;
      if (signal.aborted) return;
      throw err;
    } finally {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      if (!body.destroyed) body.destroy();
    }
  }
}

/** The JSON body of `call` for a target (memoised per model and kind), or null for none. */
function bodyFor(call: LlmCall): (target: UpstreamTarget) => string | null {
  const { json } = call;
  if (typeof json === "string") return () => json;
  if (json === undefined) {
    // Serialized once, before any server is chosen: a body that cannot be (the caller's
    // fault) is a 400, never a failure of the server it would have gone to.
    const body = serialize(call.body);
    return () => body;
  }
  const made = new Map<string, string>();
  return (target) => {
    const key = `${target.kind}\u0000${target.model ?? ""}`;
    let text = made.get(key);
    if (text === undefined) {
      text = json(target);
      made.set(key, text);
    }
    return text;
  };
}

/** An OpenAI upstream that refused the gateway itself (its key, its model, its own limit). */
function refusedUpstream(status: number): HttpError {
  if (status === 429 || status === 408) {
    return new HttpError(503, "LLM_BUSY", "The model server is busy; try again shortly", {
      "retry-after": "5",
    });
  }
  return new HttpError(502, "UPSTREAM_ERROR", `The model server refused the gateway (${status})`);
}

/** The message of an error body: OpenAI's `error.message`, or FastAPI's `detail`. */
function errorMessage(body: string): { message?: string; code?: string } {
  try {
    const parsed = JSON.parse(body) as {
      error?: { message?: unknown; code?: unknown };
      detail?: unknown;
    };
    const out: { message?: string; code?: string } = {};
    if (typeof parsed.error?.message === "string") out.message = parsed.error.message;
    if (typeof parsed.error?.code === "string") out.code = parsed.error.code.toUpperCase();
    const detail = parsed.detail;
    if (out.message === undefined && typeof detail === "string") out.message = detail;
    if (out.message === undefined && Array.isArray(detail)) {
      const first = detail[0] as { msg?: unknown; loc?: unknown } | undefined;
      const loc = Array.isArray(first?.loc) ? first.loc.filter((p) => p !== "body").join(".") : "";
      if (typeof first?.msg === "string") out.message = loc ? `${loc}: ${first.msg}` : first.msg;
    }
    return out;
  } catch {
    return {}; // not JSON: the generic message
  }
}

/** Longest upstream message passed on to the client. */
const MAX_MESSAGE = 1000;

/**
 * Maps an upstream error answer: 4xx keep status and message (an OpenAI upstream's key
 * never in it), 5xx become generic.
 */
export function upstreamError(
  status: number,
  body: string,
  target?: UpstreamTarget,
  retryAfter?: string | null,
): HttpError {
  const found = errorMessage(body);
  if (status >= 500) {
    if (status !== 503) return new HttpError(502, "UPSTREAM_ERROR", "The model server failed");
    // Our llm-server's 503 says why (a model loading) and when to retry: passed on.
    const ours = target?.kind === "llm-server" && found.message !== undefined;
    const message = ours ? found.message : "The model server is unavailable";
    return new HttpError(
      503,
      "LLM_UNAVAILABLE",
      (message ?? "").slice(0, MAX_MESSAGE),
      ours && retryAfter ? { "retry-after": retryAfter } : {},
    );
  }
  const message = scrub(
    target,
    found.message ?? `The model server refused the request (${status})`,
  );
  const code =
    found.code && /^[A-Z0-9_]{1,64}$/.test(found.code) ? found.code : "UPSTREAM_REJECTED";
  return new HttpError(status, code, message.slice(0, MAX_MESSAGE));
}
