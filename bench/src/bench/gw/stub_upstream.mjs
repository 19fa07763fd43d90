// A stub llm-server for the gateway benchmarks: speaks just enough of the OpenAI API
// (and llm-server's /health/ready) to be proxied, and answers as cheaply as Node's bare
// http module allows, so that it is never the bottleneck.
//
//   node stub_upstream.mjs --port 0 --token T [--chunk-interval-ms 10]
//
// Prints `STUB_READY <port>` once listening. Non-streamed completions get one fixed, small
// JSON body at once. A streamed completion (stream: true) gets `max_tokens` content chunks,
// the first at once and then one every --chunk-interval-ms, then a finish chunk, a usage chunk
// when stream_options.include_usage, and `data: [DONE]`. Each chunk's content is
// `t<ns>;`, <ns> being CLOCK_MONOTONIC (process.hrtime.bigint()) just before the write, so
// the client can tell how long every chunk took to reach it (Python's time.monotonic_ns()
// reads the same clock).
import http from "node:http";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "0" },
    host: { type: "string", default: "127.0.0.1" },
    token: { type: "string" },
    "chunk-interval-ms": { type: "string", default: "10" },
  },
});
if (!values.token) {
  process.stderr.write("stub: --token is required\n");
  process.exit(2);
}
const AUTH = `Bearer ${values.token}`;
const INTERVAL_MS = Number(values["chunk-interval-ms"]);
const MODEL = "stub-model";
const CREATED = Math.floor(Date.now() / 1000);

const json = (obj) => Buffer.from(JSON.stringify(obj));
const HEALTH = json({ status: "ready", running: 0, queued: 0, max_running: 1000 });
const MODELS = json({
  object: "list",
  data: [{ id: MODEL, object: "model", created: CREATED, owned_by: "bench" }],
});
const USAGE = { prompt_tokens: 8, completion_tokens: 4, total_tokens: 12 };
const CHAT = json({
  id: "chatcmpl-stub",
  object: "chat.completion",
  created: CREATED,
  model: MODEL,
  choices: [
    { index: 0, message: { role: "assistant", content: "stub answer" }, finish_reason: "stop" },
  ],
  usage: USAGE,
});
const COMPLETION = json({
  id: "cmpl-stub",
  object: "text_completion",
  created: CREATED,
  model: MODEL,
  choices: [{ index: 0, text: "stub answer", finish_reason: "stop", logprobs: null }],
  usage: USAGE,
});
const UNAUTHORIZED = json({
  error: { message: "bad token", type: "authentication_error", param: null, code: "unauthorized" },
});
const NOT_FOUND = json({ error: { message: "not found", type: "not_found", param: null, code: null } });

function send(res, status, body) {
  res.writeHead(status, { "content-type": "application/json", "content-length": body.length });
  res.end(body);
}

function chunk(chat, content, finish) {
  const choice = chat
    ? { index: 0, delta: content === null ? {} : { content }, finish_reason: finish }
    : { index: 0, text: content ?? "", finish_reason: finish, logprobs: null };
  return `data: {"id":"${chat ? "chatcmpl" : "cmpl"}-stub","object":"${
    chat ? "chat.completion.chunk" : "text_completion"
  }","created":${CREATED},"model":"${MODEL}","choices":[${JSON.stringify(choice)}]}\n\n`;
}

function stream(res, chat, count, includeUsage) {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  let sent = 0;
  let timer;
  const tick = () => {
    if (res.destroyed) {
      clearInterval(timer);
      return;
    }
    res.write(chunk(chat, `t${process.hrtime.bigint()};`, null));
    sent += 1;
    if (sent < count) return;
    clearInterval(timer);
    res.write(chunk(chat, null, "length"));
    if (includeUsage) {
      res.write(
        `data: {"id":"stub","object":"chat.completion.chunk","created":${CREATED},"model":"${MODEL}","choices":[],"usage":${JSON.stringify(
          { prompt_tokens: 8, completion_tokens: count, total_tokens: 8 + count },
        )}}\n\n`,
      );
    }
    res.end("data: [DONE]\n\n");
  };
  tick();
  if (sent < count) timer = setInterval(tick, INTERVAL_MS);
}

const server = http.createServer((req, res) => {
  const url = req.url ?? "";
  if (req.method === "GET" && url.startsWith("/health")) return send(res, 200, HEALTH);
  if (req.headers.authorization !== AUTH) {
    req.resume();
    return send(res, 401, UNAUTHORIZED);
  }
  if (req.method === "GET" && url === "/v1/models") return send(res, 200, MODELS);
  const chat = url === "/v1/chat/completions";
  if (req.method !== "POST" || !(chat || url === "/v1/completions")) {
    req.resume();
    return send(res, 404, NOT_FOUND);
  }
  const parts = [];
  req.on("data", (c) => parts.push(c));
  req.on("end", () => {
    let body;
    try {
      body = JSON.parse(Buffer.concat(parts).toString("utf8"));
    } catch {
      return send(res, 400, NOT_FOUND);
    }
    if (body.stream === true) {
      const n = Number.isInteger(body.max_tokens) && body.max_tokens > 0 ? body.max_tokens : 16;
      return stream(res, chat, n, body.stream_options?.include_usage === true);
    }
    return send(res, 200, chat ? CHAT : COMPLETION);
  });
});
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;
server.listen(Number(values.port), values.host, () => {
  process.stdout.write(`STUB_READY ${server.address().port}\n`);
});
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => server.close(() => process.exit(0)));
