import { HttpError } from "../errors.js";

export interface LlmClientOptions {
  urls: readonly string[];
  token: string;
  /** Time allowed until upstream answers (headers), and until the first body chunk. */
  firstTokenTimeoutMs: number;
  /** Longest silence allowed between two chunks of a streamed body. */
  idleTimeoutMs: number;
}

export interface LlmCall {
  method: "GET" | "POST";
  path: string;
  body?: unknown;
  /** The caller's user id, sent as X-Client-ID for fair scheduling. */
  clientId: string;
  requestId: string;
  /** Aborts the upstream request (client disconnect). */
  signal: AbortSignal;
}

/** Why an upstream call stopped early. */
export class UpstreamTimeout extends HttpError {
  constructor(kind: "first-token" | "idle") {
    super(504, "UPSTREAM_TIMEOUT", `The model server did not answer in time (${kind} timeout)`);
  }
}

export function noServerError(): HttpError {
  return new HttpError(503, "LLM_UNAVAILABLE", "No model server is reachable");
}

/**
 * Talks to llm-server: builds fresh headers (service token, request id, client id; never
 * the caller's cookies or Authorization) and fails over to the next URL when one is
 * unreachable. Load balancing is a later concern: the first reachable server wins.
 */
export class LlmClient {
  constructor(private readonly options: LlmClientOptions) {}

  /**
   * Sends the call and resolves with the upstream response once its headers arrive.
   * `controller` is aborted on timeout; the caller aborts it on client disconnect.
   */
  async send(call: LlmCall): Promise<Response> {
    const controller = new AbortController();
    const onAbort = () => controller.abort(call.signal.reason);
    call.signal.addEventListener("abort", onAbort, { once: true });
    const timer = setTimeout(
      () => controller.abort(new UpstreamTimeout("first-token")),
      this.options.firstTokenTimeoutMs,
    );
    try {
      let lastError: unknown;
      for (const base of this.options.urls) {
        try {
          return await fetch(`${base}${call.path}`, {
            method: call.method,
            headers: {
              authorization: `Bearer ${this.options.token}`,
              accept: "application/json, text/event-stream",
              "x-request-id": call.requestId,
              "x-client-id": call.clientId,
              ...(call.body !== undefined ? { "content-type": "application/json" } : {}),
            },
            ...(call.body !== undefined ? { body: JSON.stringify(call.body) } : {}),
            signal: controller.signal,
          });
        } catch (err) {
          if (controller.signal.aborted) throw controller.signal.reason ?? err;
          lastError = err; // unreachable: try the next server
        }
      }
      throw Object.assign(noServerError(), { cause: lastError });
    } finally {
      clearTimeout(timer);
      call.signal.removeEventListener("abort", onAbort);
    }
  }

  /** Sends a call and parses a JSON answer; upstream 4xx keep their status and message. */
  async json<T>(call: LlmCall): Promise<T> {
    const res = await this.send(call);
    const text = await res.text();
    if (res.ok) return JSON.parse(text) as T;
    throw upstreamError(res.status, text);
  }

  /**
   * Yields the chunks of a streamed body, aborting with UpstreamTimeout when the first
   * chunk or any later one takes too long. Stops at once when `signal` aborts.
   */
  async *chunks(res: Response, signal: AbortSignal): AsyncGenerator<Uint8Array> {
    if (!res.body) return;
    const reader = res.body.getReader();
    let first = true;
    const onAbort = () => {
      reader.cancel().catch(() => undefined);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      while (true) {
        const ms = first ? this.options.firstTokenTimeoutMs : this.options.idleTimeoutMs;
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new UpstreamTimeout(first ? "first-token" : "idle")), ms);
        });
        try {
          const { done, value } = await Promise.race([reader.read(), timeout]);
          if (done) return;
          first = false;
          yield value;
        } finally {
          clearTimeout(timer);
        }
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      reader.cancel().catch(() => undefined);
    }
  }
}

/** Maps an upstream error answer: 4xx keep status and message, 5xx become generic. */
export function upstreamError(status: number, body: string): HttpError {
  if (status >= 500) {
    return status === 503
      ? new HttpError(503, "LLM_UNAVAILABLE", "The model server is unavailable")
      : new HttpError(502, "UPSTREAM_ERROR", "The model server failed");
  }
  let message = `The model server refused the request (${status})`;
  let code = "UPSTREAM_REJECTED";
  try {
    const parsed = JSON.parse(body) as { error?: { message?: unknown; code?: unknown } };
    if (typeof parsed.error?.message === "string") message = parsed.error.message;
    if (typeof parsed.error?.code === "string") code = parsed.error.code.toUpperCase();
  } catch {
    // not JSON: keep the generic message
  }
  return new HttpError(status, code, message);
}
