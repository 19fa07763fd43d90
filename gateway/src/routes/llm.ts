import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { FastifyReply, FastifyRequest } from "fastify";
import { type Static, Type } from "typebox";
import { HttpError, openAiError } from "../errors.js";
import { type CatalogModel, catalogModels, reportedState } from "../models/catalog.js";
import type { ModelRouter } from "../models/router.js";
import { principalOf } from "../plugins/auth.js";
import { authErrors, contentTypes, ErrorEnvelope } from "../schemas.js";
import type { ActiveCalls } from "../services/active-calls.js";
import type { CompletionPath, CompletionService } from "../services/completions.js";
import { upstreamError } from "../services/llm-client.js";
import type { AnalyzeBody, MeteredCalls } from "../services/metered.js";
import type { CallContext } from "../services/metering.js";
import type { ModelGate } from "../services/model-gate.js";
import { SseStream } from "../sse.js";

export interface LlmRoutesOptions {
  metered: MeteredCalls;
  /** The model catalog (GATEWAY_MODELS_FILE), or the one pool of LLM_SERVER_URLS. */
  router: ModelRouter;
  completions: CompletionService;
  /** Every LLM call in flight, so the gateway can end them (lost access, shutdown). */
  calls: ActiveCalls;
  heartbeatMs: number;
  /** Takes the models a caller may not use out of the model lists. */
  gate: ModelGate;
}

/**
 * Who calls, for limits, usage and upstream headers. Its signal aborts when the client
 * goes away before the reply finished, or (an HttpError reason) when `calls` ends the
 * call: the caller lost access, or the gateway is shutting down.
 */
export function callContext(
  request: FastifyRequest,
  reply: FastifyReply,
  calls: ActiveCalls,
): CallContext {
  const p = principalOf(request);
  const controller = new AbortController();
  const ctx: CallContext = {
    userId: p.user.id,
    role: p.user.role,
    apiKeyId: p.apiKeyId ?? null,
    route: request.routeOptions.url ?? request.url,
    requestId: String(request.id),
    signal: controller.signal,
    log: request.log,
  };
  const untrack = calls.track(ctx, request.headers, controller);
  reply.raw.once("close", () => {
    untrack();
    if (!reply.raw.writableFinished) controller.abort(new Error("client disconnected"));
  });
  return ctx;
}

const Message = Type.Object(
  { role: Type.String({ minLength: 1 }), content: Type.Unknown() },
  { additionalProperties: true },
);
/**
 * The request fields the gateway reads (limits, caching, streaming) or that commonly come
 * with a wrong type, checked here so a `"max_tokens": "8"` is a 400 rather than a value
 * silently replaced; the rest goes to llm-server, which checks it too.
 */
const TokenCount = Type.Union([Type.Integer({ minimum: 1 }), Type.Null()]);
const SamplingFields = {
  model: Type.Optional(Type.String()),
  stream: Type.Optional(Type.Boolean()),
  stream_options: Type.Optional(
    Type.Union([
      Type.Object({ include_usage: Type.Optional(Type.Boolean()) }, { additionalProperties: true }),
      Type.Null(),
    ]),
  ),
  max_tokens: Type.Optional(TokenCount),
  n: Type.Optional(Type.Integer({ minimum: 1, maximum: 16 })),
  temperature: Type.Optional(Type.Number({ minimum: 0, maximum: 2 })),
  top_p: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1 })),
  seed: Type.Optional(Type.Union([Type.Integer({ minimum: 0 }), Type.Null()])),
  stop: Type.Optional(
    Type.Union([Type.String(), Type.Array(Type.String(), { maxItems: 4 }), Type.Null()]),
  ),
};
const ChatBody = Type.Object(
  {
    ...SamplingFields,
    messages: Type.Array(Message, { minItems: 1 }),
    max_completion_tokens: Type.Optional(TokenCount),
  },
  { additionalProperties: true, description: "OpenAI chat completion request" },
);
const CompletionBody = Type.Object(
  {
    ...SamplingFields,
    prompt: Type.Union([Type.String(), Type.Array(Type.String())]),
  },
  { additionalProperties: true, description: "OpenAI completion request" },
);
const Passthrough = Type.Object(
  {},
  {
    additionalProperties: true,
    description: "llm-server's answer, unchanged (JSON, or text/event-stream when stream=true)",
  },
);
/** A completion: llm-server's JSON, or with stream=true its chunks as SSE (then `[DONE]`). */
const Completion = contentTypes(
  "llm-server's answer, unchanged (JSON, or text/event-stream when stream=true)",
  {
    "application/json": Passthrough,
    "text/event-stream": Type.Object(
      {
        event: Type.Literal("message"),
        data: Type.String({ description: "an OpenAI chunk as JSON, `[DONE]` last" }),
      },
      { title: "CompletionChunkEvent" },
    ),
  },
);
const OpenAiErrorSchema = Type.Object({
  error: Type.Object({
    message: Type.String(),
    type: Type.String(),
    param: Type.Union([Type.String(), Type.Null()]),
    code: Type.Union([Type.String(), Type.Null()]),
  }),
});
const openAiErrors = {
  400: OpenAiErrorSchema,
  429: OpenAiErrorSchema,
  401: OpenAiErrorSchema,
  403: OpenAiErrorSchema,
  "5xx": OpenAiErrorSchema,
};

const AnalyzeResult = Type.Object({
  model: Type.String(),
  token_count: Type.Integer(),
  perplexity: Type.Union([Type.Number(), Type.Null()]),
  tokens: Type.Array(
    Type.Object({
      token: Type.String(),
      token_id: Type.Integer(),
      logprob: Type.Union([Type.Number(), Type.Null()]),
      top_logprobs: Type.Array(Type.Object({ token: Type.String(), logprob: Type.Number() })),
    }),
  ),
  classification: Type.Optional(
    Type.Array(Type.Object({ label: Type.String(), probability: Type.Number() })),
  ),
});

/** Forwards an OpenAI request through the completion service; streams SSE when asked. */
async function proxy(
  { completions, calls, heartbeatMs }: LlmRoutesOptions,
  request: FastifyRequest,
  reply: FastifyReply,
  path: CompletionPath,
  body: Record<string, unknown>,
) {
  const started = await completions.start(callContext(request, reply, calls), path, body);
  if (started.kind === "json") {
    return reply
      .code(started.status)
      .headers(started.headers)
      .type("application/json")
      .send(started.body);
  }
  const sse = new SseStream(reply, heartbeatMs, started.headers);
  try {
    for await (const chunk of started.events) await sse.write(`data: ${chunk.data}\n\n`);
  } catch (err) {
    if (!sse.signal.aborted) {
      const known = err instanceof HttpError;
      if (!known || err.statusCode >= 500) request.log.warn({ err }, "upstream stream failed");
      // An HttpError's code and message are written for the client; anything else is not.
      const status = known ? err.statusCode : 502;
      const message = known ? err.message : "The model server failed";
      const code = known ? err.code : "upstream_error";
      await sse.write(`data: ${JSON.stringify(openAiError(status, code, message))}\n\n`);
    }
  } finally {
    sse.end();
  }
  return reply;
}

type App = Parameters<FastifyPluginAsyncTypebox>[0];

/** The completion routes: `/v1/chat/completions`, `/v1/completions` and their `/api/llm/*` twins. */
function completionRoutes(app: App, options: LlmRoutesOptions): void {
  const routes = [
    {
      urls: ["/v1/chat/completions", "/api/llm/chat"],
      path: "/v1/chat/completions",
      body: ChatBody,
    },
    {
      urls: ["/v1/completions", "/api/llm/generate"],
      path: "/v1/completions",
      body: CompletionBody,
    },
  ] as const;
  for (const route of routes) {
    for (const url of route.urls) {
      const v1 = url.startsWith("/v1/");
      app.post(
        url,
        {
          config: { auth: "user" },
          schema: {
            tags: [v1 ? "openai" : "llm"],
            summary: `Proxied to llm-server ${route.path} (stream=true gives SSE)`,
            security: [{ bearer: [] }, { cookie: [] }],
            body: route.body,
            response: v1
              ? { 200: Completion, ...openAiErrors }
              : { 200: Completion, 429: ErrorEnvelope, ...authErrors },
          },
        },
        async (request, reply) =>
          proxy(options, request, reply, route.path, request.body as Record<string, unknown>),
      );
    }
  }
}

const ModelState = Type.Union([
  Type.Literal("ready"),
  Type.Literal("loading"),
  Type.Literal("unloaded"),
  Type.Literal("down"),
]);
const ModelList = Type.Object({
  models: Type.Array(
    Type.Object({
      id: Type.String(),
      // "base" (no chat template: it continues text) or "chat".
      kind: Type.Optional(Type.Union([Type.Literal("base"), Type.Literal("chat")])),
      state: Type.Optional(ModelState),
      default: Type.Optional(Type.Boolean()),
    }),
  ),
});
type ListedModel = Static<typeof ModelList>["models"][number];

/** An llm-server `/v1/models` entry as the browser's list shows it. */
function listedFromServer(m: { id: string; kind?: unknown; state?: unknown; default?: unknown }) {
  const out: ListedModel = { id: m.id };
  if (m.kind === "base" || m.kind === "chat") out.kind = m.kind;
  if (m.state !== undefined) out.state = reportedState(m.state);
  if (m.default === true) out.default = true;
  return out;
}

/** A catalog model in the lists: `/api/models` fields, plus OpenAI's for `/v1/models`. */
function listedFromCatalog(m: CatalogModel): ListedModel {
  return { id: m.id, ...(m.kind ? { kind: m.kind } : {}), state: m.state, default: m.default };
}

/**
 * The models the caller may use, as list entries: the routing file's catalog, or (without
 * one) llm-server's `/v1/models` answer, metered as before; the access rules' filter applied.
 */
async function listModels(
  { metered, calls, router, gate }: LlmRoutesOptions,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<ListedModel[]> {
  let text: string;
  if (router.routing) {
    text = JSON.stringify({ data: (await catalogModels(router)).map(listedFromCatalog) });
  } else {
    const answer = await metered.models(callContext(request, reply, calls));
    if (answer.status >= 400) throw upstreamError(answer.status, answer.text);
    text = answer.text;
  }
  const list = JSON.parse(await gate.filterList(principalOf(request), text)) as {
    data?: ({ id: string } & Record<string, unknown>)[];
  };
  const data = list.data ?? [];
  return router.routing ? (data as ListedModel[]) : data.map(listedFromServer);
}

/** The model lists: `/v1/models` (OpenAI's format) and `/api/models` for the browser. */
function modelRoutes(app: App, options: LlmRoutesOptions): void {
  app.get(
    "/v1/models",
    {
      config: { auth: "user" },
      schema: {
        tags: ["openai"],
        summary: "The models the caller may use (OpenAI format, with kind, state and default)",
        response: { 200: Passthrough, ...openAiErrors },
      },
    },
    async (request, reply) => {
      const { router, metered, calls, gate } = options;
      if (!router.routing) {
        // llm-server's list as received (a string is not re-serialized), without the models
        // the caller may not use.
        const answer = await metered.models(callContext(request, reply, calls));
        if (answer.status >= 500) throw upstreamError(answer.status, answer.text);
        const text =
          answer.status >= 400
            ? answer.text
            : await gate.filterList(principalOf(request), answer.text);
        return reply
          .code(answer.status)
          .type("application/json")
          .send(text as unknown as Record<string, unknown>);
      }
      const models = await listModels(options, request, reply);
      const data = models.map((m) => ({ object: "model", owned_by: "gateway", created: 0, ...m }));
      return reply.code(200).send({ object: "list", data });
    },
  );

  for (const url of ["/api/models", "/api/llm/models"]) {
    app.get(
      url,
      {
        config: { auth: "user" },
        schema: {
          tags: ["llm"],
          summary: "The models the caller may use, with kind, state and which one is the default",
          response: { 200: ModelList, 429: ErrorEnvelope, ...authErrors },
        },
      },
      async (request, reply) => ({ models: await listModels(options, request, reply) }),
    );
  }
}

/** `/api/analyze`: token log-probabilities, perplexity, classification. */
function analyzeRoutes(app: App, { metered, calls }: LlmRoutesOptions): void {
  for (const url of ["/api/analyze", "/api/llm/analyze"]) {
    app.post(
      url,
      {
        config: { auth: "user" },
        schema: {
          tags: ["llm"],
          summary: "Token log-probabilities, perplexity and optional label classification",
          body: Type.Object(
            {
              text: Type.String({ minLength: 1, maxLength: 100_000 }),
              labels: Type.Optional(
                Type.Array(Type.String({ minLength: 1, maxLength: 200 }), { maxItems: 20 }),
              ),
              template: Type.Optional(Type.String({ maxLength: 10_000 })),
              top_logprobs: Type.Optional(Type.Integer({ minimum: 0, maximum: 20 })),
            },
            { additionalProperties: false },
          ),
          response: { 200: AnalyzeResult, 429: ErrorEnvelope, 504: ErrorEnvelope, ...authErrors },
        },
      },
      async (request, reply) =>
        metered.analyze<Static<typeof AnalyzeResult>>(
          callContext(request, reply, calls),
          request.body as AnalyzeBody,
        ),
    );
  }
}

/** The LLM routes: OpenAI-compatible `/v1/*`, and `/api/models`, `/api/analyze`. */
export const llmRoutes: FastifyPluginAsyncTypebox<LlmRoutesOptions> = async (app, options) => {
  completionRoutes(app, options);
  modelRoutes(app, options);
  analyzeRoutes(app, options);
};
