import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface FakeOpenAi {
  /** The base URL as a routing file gives it (ends in `/v1`). */
  url: string;
  requests: {
    method: string;
    path: string;
    auth: string | undefined;
    body: Record<string, unknown> | undefined;
  }[];
  close(): Promise<void>;
}

/**
 * A small real OpenAI-compatible server unlike llm-server: its base URL ends in `/v1`, it
 * wants its own API key (a wrong one is echoed in the 401, as some providers do), it answers
 * with the model name it was sent, and its streams carry no usage chunk even when asked
 * (`usage: false` leaves usage out of JSON answers too). The last message steers it:
 * `ERROR400` → 400 (the client's fault), `ERROR500` → 500.
 */
export async function startFakeOpenAi(key: string, usage = true): Promise<FakeOpenAi> {
  const requests: FakeOpenAi["requests"] = [];
  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  };
  const handle = (
    req: IncomingMessage,
    res: ServerResponse,
    body: Record<string, unknown> | undefined,
  ) => {
    const path = req.url ?? "/";
    requests.push({ method: req.method ?? "", path, auth: req.headers.authorization, body });
    const presented = req.headers.authorization?.replace(/^Bearer /, "") ?? "";
    if (presented !== key) {
      return json(res, 401, {
        error: {
          message: `Incorrect API key provided: ${presented}`,
          type: "invalid_request_error",
          code: "invalid_api_key",
        },
      });
    }
    if (path === "/v1/models") {
      return json(res, 200, { object: "list", data: [{ id: "upstream-model", object: "model" }] });
    }
    if (path !== "/v1/chat/completions")
      return json(res, 404, { error: { message: "no such route" } });
    const messages = (body?.messages ?? []) as { content?: unknown }[];
    const content = String(messages.at(-1)?.content ?? "");
    if (content.includes("ERROR400")) {
      return json(res, 400, {
        error: {
          message: "This model's maximum context length is 8 tokens",
          type: "invalid_request_error",
          code: "context_length_exceeded",
        },
      });
    }
    if (content.includes("ERROR500")) return json(res, 500, { error: { message: "boom" } });
    const model = String(body?.model);
    const pieces = ["Bon", "jour", "!"];
    if (body?.stream !== true) {
      return json(res, 200, {
        id: "x-1",
        object: "chat.completion",
        model,
        choices: [
          {
            index: 0,
            message: { role: "assistant", content: pieces.join("") },
            finish_reason: "stop",
          },
        ],
        ...(usage ? { usage: { prompt_tokens: 11, completion_tokens: 3, total_tokens: 14 } } : {}),
      });
    }
    res.writeHead(200, { "content-type": "text/event-stream" });
    const chunk = (delta: Record<string, unknown>, finish: string | null) =>
      `data: ${JSON.stringify({ id: "x-1", object: "chat.completion.chunk", model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
    res.write(chunk({ role: "assistant" }, null));
    for (const p of pieces) res.write(chunk({ content: p }, null));
    res.write(chunk({}, "stop"));
    res.end("data: [DONE]\n\n");
  };
  const server = createServer((req, res) => {
    let raw = "";
    req.on("data", (c: Buffer) => {
      raw += c.toString();
    });
    req.on("end", () =>
      handle(req, res, raw ? (JSON.parse(raw) as Record<string, unknown>) : undefined),
    );
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
