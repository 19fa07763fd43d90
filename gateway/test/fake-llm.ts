import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttpsServer, type ServerOptions } from "node:https";
import type { AddressInfo } from "node:net";

export const FAKE_TOKEN = "test-llm-server-token-0123456789";

export interface Recorded {
  method: string;
  path: string;
  headers: IncomingMessage["headers"];
  body: Record<string, unknown> | undefined;
}

export interface FakeLlm {
  url: string;
  requests: Recorded[];
  /** Streams the client closed before the fake finished them. */
  aborted: number;
  /** Resolves when the next stream is aborted by the client. */
  nextAbort(): Promise<void>;
  /** What `/health/ready` answers (status and JSON body). */
  health: { status: number; body: Record<string, unknown> };
  /**
   * `"after-headers"`: every API call gets 200 headers, then the socket is destroyed
   * before any body byte (a server that dies after accepting the request).
   */
  failure: "none" | "after-headers";
  /** Lets every `HOLD` stream go on past its first chunk, and every `WAIT` answer start. */
  releaseHeld(): void;
  close(): Promise<void>;
}

/**
 * An llm-server's /health/ready answer listing `models` with their states (and whatever else
 * a model carries: its `prefix_cache`, or something malformed).
 */
export function readyWith(models: ({ id: string; state: string } & Record<string, unknown>)[]) {
  return {
    status: 200,
    body: { status: "ready", running: 0, queued: 0, max_running: 4, models },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function lastContent(body: Record<string, unknown> | undefined): string {
  const messages = body?.messages as { content?: unknown }[] | undefined;
  if (messages) return String(messages.at(-1)?.content ?? "");
  return String(body?.prompt ?? "");
}

/**
 * A small real HTTP server speaking llm-server's API (OpenAI SSE format). The last
 * message's content steers it: `ERROR400` → 400, `SLOW` → one chunk then silence,
 * `MIDFAIL` → one chunk then an in-band error, `CRASH` → one chunk then a reset socket,
 * `EMPTYTOKEN` → (chat: a role chunk,) one chunk, a token chunk with empty text, then silence;
 * `HOLD` → one chunk, then the rest once `releaseHeld()` is called; `WAIT` → nothing (not
 * even headers) until `releaseHeld()`, then the whole answer.
 */
export async function startFakeLlm(
  port = 0,
  token = FAKE_TOKEN,
  /** Serve HTTPS with these options (certificate, key, client CA), as llm-server with TLS. */
  tls?: ServerOptions,
): Promise<FakeLlm> {
  const requests: Recorded[] = [];
  const state = {
    health: {
      status: 200,
      body: { status: "ready", running: 0, queued: 0, max_running: 4 } as Record<string, unknown>,
    },
  };
  let failure: FakeLlm["failure"] = "none";
  let aborted = 0;
  let abortWaiters: (() => void)[] = [];
  let held: (() => void)[] = [];

  async function handle(req: IncomingMessage, res: ServerResponse, body: Recorded["body"]) {
    const path = req.url ?? "/";
    if (path === "/health/ready") return json(res, state.health.status, state.health.body);
    if (req.headers.authorization !== `Bearer ${token}`) {
      return json(res, 401, {
        error: { message: "bad token", type: "auth", code: "unauthorized" },
      });
    }
    if (failure === "after-headers") {
      const sse = body?.stream === true;
      res.writeHead(200, { "content-type": sse ? "text/event-stream" : "application/json" });
      res.flushHeaders();
      await sleep(20);
      res.socket?.destroy();
      return;
    }
    if (path === "/v1/models") {
      return json(res, 200, {
        object: "list",
        data: [{ id: "fake-model", object: "model", kind: "base" }],
      });
    }
    if (path === "/analyze") {
      if (String(body?.text).includes("ERROR400")) {
        return json(res, 400, {
          error: { message: "text too long", type: "invalid_request_error", code: "too_long" },
        });
      }
      return json(res, 200, {
        model: "fake-model",
        token_count: 1,
        perplexity: 2.5,
        tokens: [
          {
            token: "hi",
            token_id: 7,
            logprob: -0.5,
            top_logprobs: [{ token: "hi", logprob: -0.5 }],
          },
        ],
        classification: [{ label: "a", probability: 1 }],
      });
    }
    const chat = path === "/v1/chat/completions";
    if (!chat && path !== "/v1/completions") return json(res, 404, { error: { message: "nope" } });
    const content = lastContent(body);
    if (content.includes("ERROR400")) {
      return json(res, 400, {
        error: {
          message: "prompt too long",
          type: "invalid_request_error",
          param: null,
          code: "context_length_exceeded",
        },
      });
    }
    if (content.includes("WAIT")) await new Promise<void>((r) => held.push(r));
    const pieces = ["Hel", "lo", " world"];
    // llm-server's count of the prompt, sent before the body starts (5, as in `usage`).
    res.setHeader("x-prompt-tokens", "5");
    if (body?.stream !== true) {
      const text = pieces.join("");
      return json(res, 200, {
        id: "cmpl-1",
        object: chat ? "chat.completion" : "text_completion",
        model: "fake-model",
        choices: [
          chat
            ? { index: 0, message: { role: "assistant", content: text }, finish_reason: "stop" }
            : { index: 0, text, finish_reason: "stop" },
        ],
        usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 },
      });
    }
    res.writeHead(200, { "content-type": "text/event-stream" });
    let finished = false;
    res.on("close", () => {
      if (!finished) {
        aborted += 1;
        for (const w of abortWaiters) w();
        abortWaiters = [];
      }
    });
    const chunk = (piece: string, finish: string | null) =>
      `data: ${JSON.stringify({
        id: "cmpl-1",
        object: chat ? "chat.completion.chunk" : "text_completion",
        model: "fake-model",
        choices: [
          chat
            ? { index: 0, delta: { content: piece }, finish_reason: finish }
            : { index: 0, text: piece, finish_reason: finish },
        ],
      })}\n\n`;
    const emptyToken = content.includes("EMPTYTOKEN");
    // As llm-server: chat's opening role chunk, which carries no token.
    if (emptyToken && chat) {
      res.write(
        `data: ${JSON.stringify({ id: "cmpl-1", object: "chat.completion.chunk", model: "fake-model", choices: [{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }] })}\n\n`,
      );
    }
    res.write(chunk(pieces[0] ?? "", null));
    if (content.includes("SLOW")) return; // hang until the client goes away
    // A token whose text is empty (an end-of-generation token), then silence.
    if (emptyToken) return void res.write(chunk("", null));
    if (content.includes("HOLD")) await new Promise<void>((r) => held.push(r));
    if (content.includes("MIDFAIL")) {
      finished = true;
      res.end(
        `data: ${JSON.stringify({ error: { message: "decode failed", type: "server_error" } })}\n\n`,
      );
      return;
    }
    if (content.includes("CRASH")) {
      finished = true;
      await sleep(50);
      res.socket?.destroy();
      return;
    }
    for (const [i, piece] of pieces.slice(1).entries()) {
      await sleep(5);
      res.write(chunk(piece, i === pieces.length - 2 ? "stop" : null));
    }
    const options = body.stream_options as { include_usage?: boolean } | undefined;
    if (options?.include_usage) {
      res.write(
        `data: ${JSON.stringify({ id: "cmpl-1", choices: [], usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 } })}\n\n`,
      );
    }
    finished = true;
    res.end("data: [DONE]\n\n");
  }

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    let raw = "";
    req.on("data", (d: Buffer) => {
      raw += d.toString();
    });
    req.on("end", () => {
      const body = raw ? (JSON.parse(raw) as Record<string, unknown>) : undefined;
      requests.push({ method: req.method ?? "", path: req.url ?? "", headers: req.headers, body });
      void handle(req, res, body);
    });
  };
  const server = tls ? createHttpsServer(tls, onRequest) : createServer(onRequest);
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  const bound = (server.address() as AddressInfo).port;
  return {
    url: `${tls ? "https" : "http"}://127.0.0.1:${bound}`,
    get health() {
      return state.health;
    },
    set health(value) {
      state.health = value;
    },
    get failure() {
      return failure;
    },
    set failure(value) {
      failure = value;
    },
    requests,
    get aborted() {
      return aborted;
    },
    nextAbort: () => new Promise<void>((resolve) => abortWaiters.push(resolve)),
    releaseHeld: () => {
      for (const r of held) r();
      held = [];
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}
