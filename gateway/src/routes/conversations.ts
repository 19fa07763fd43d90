import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { principalOf } from "../plugins/auth.js";
import {
  authErrors,
  contentTypes,
  DateTime,
  ErrorEnvelope,
  IdParams,
  Ok,
  paging,
  sseEvent,
} from "../schemas.js";
import type { ActiveCalls } from "../services/active-calls.js";
import { type ChatService, messageBody } from "../services/chat.js";
import type {
  ConversationInfo,
  ConversationService,
  MessageInfo,
} from "../services/conversations.js";
import { SseStream } from "../sse.js";
import { callContext } from "./llm.js";

export interface ConversationRoutesOptions {
  conversations: ConversationService;
  chat: ChatService;
  /** Every LLM call in flight, so the gateway can end them (lost access, shutdown). */
  calls: ActiveCalls;
  heartbeatMs: number;
}

const Conversation = Type.Object(
  { id: Type.String(), title: Type.String(), createdAt: DateTime, updatedAt: DateTime },
  { title: "Conversation" },
);
const Message = Type.Object(
  {
    id: Type.String(),
    role: Type.Union([Type.Literal("user"), Type.Literal("assistant"), Type.Literal("system")]),
    content: Type.String(),
    createdAt: DateTime,
    finishReason: Type.Optional(Type.String()),
    model: Type.Optional(
      Type.String({
        description:
          "A user message: the model it was sent to (absent: the default model). An answer: the model that answered (after a fallback, not the one asked for).",
      }),
    ),
  },
  { title: "Message" },
);
const ConversationWithMessages = Type.Object({
  id: Type.String(),
  title: Type.String(),
  createdAt: DateTime,
  updatedAt: DateTime,
  messages: Type.Array(Message),
});
const Title = Type.String({ minLength: 1, maxLength: 200 });

/** The events of a chat turn's stream (see ChatService.stream). */
const TurnEvent = Type.Union(
  [
    sseEvent(
      "start",
      Type.Object({ userMessage: Type.Optional(Message), assistantMessageId: Type.String() }),
    ),
    sseEvent("delta", Type.Object({ text: Type.String() })),
    sseEvent(
      "done",
      Type.Object({
        message: Message,
        usage: Type.Object({ promptTokens: Type.Integer(), completionTokens: Type.Integer() }),
        finishReason: Type.String(),
      }),
    ),
    sseEvent("error", ErrorEnvelope),
  ],
  { title: "TurnEvent" },
);

const conv = (c: ConversationInfo) => ({
  ...c,
  createdAt: c.createdAt.toISOString(),
  updatedAt: c.updatedAt.toISOString(),
});
const full = (c: ConversationInfo & { messages: MessageInfo[] }) => ({
  ...conv(c),
  messages: c.messages.map(messageBody),
});

function markdown(c: ConversationInfo & { messages: MessageInfo[] }): string {
  const names = { user: "User", assistant: "Assistant", system: "System" } as const;
  const parts = [`# ${c.title}`, "", `_Exported ${new Date().toISOString()}_`, ""];
  for (const m of c.messages) {
    const note = m.finishReason && m.finishReason !== "stop" ? ` _(${m.finishReason})_` : "";
    parts.push(`## ${names[m.role]}${note}`, "", m.content, "");
  }
  return parts.join("\n");
}

type App = Parameters<FastifyPluginAsyncTypebox>[0];

const tags = ["conversations"];
const config = { auth: "user" as const };

/** Lists and creates the caller's conversations. */
function collectionRoutes(app: App, { conversations }: ConversationRoutesOptions): void {
  app.get(
    "/api/conversations",
    {
      config,
      schema: {
        tags,
        summary: "List conversations, newest first; q searches titles and message content",
        querystring: Type.Object(
          {
            q: Type.Optional(Type.String({ maxLength: 200 })),
            ...paging(200, 50),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ conversations: Type.Array(Conversation) }), ...authErrors },
      },
    },
    async (request) => {
      const { q, limit, offset } = request.query;
      const list = await conversations.list(principalOf(request).user.id, q, limit, offset);
      return { conversations: list.map(conv) };
    },
  );

  app.post(
    "/api/conversations",
    {
      config,
      schema: {
        tags,
        summary: "Create a conversation",
        body: Type.Object({ title: Type.Optional(Title) }, { additionalProperties: false }),
        response: { 201: Conversation, ...authErrors },
      },
    },
    async (request, reply) => {
      const created = await conversations.create(principalOf(request).user.id, request.body.title);
      return reply.code(201).send(conv(created));
    },
  );
}

/** Reads, renames and deletes one conversation. */
function itemRoutes(app: App, { conversations }: ConversationRoutesOptions): void {
  app.get(
    "/api/conversations/:id",
    {
      config,
      schema: {
        tags,
        summary: "A conversation with its messages",
        params: IdParams,
        response: { 200: ConversationWithMessages, ...authErrors },
      },
    },
    async (request) =>
      full(await conversations.get(principalOf(request).user.id, request.params.id)),
  );

  app.patch(
    "/api/conversations/:id",
    {
      config,
      schema: {
        tags,
        summary: "Rename a conversation",
        params: IdParams,
        body: Type.Object({ title: Title }, { additionalProperties: false }),
        response: { 200: Conversation, ...authErrors },
      },
    },
    async (request) =>
      conv(
        await conversations.rename(
          principalOf(request).user.id,
          request.params.id,
          request.body.title,
        ),
      ),
  );

  app.delete(
    "/api/conversations/:id",
    {
      config,
      schema: {
        tags,
        summary: "Delete a conversation and its messages",
        params: IdParams,
        response: { 200: Ok, ...authErrors },
      },
    },
    async (request) => {
      await conversations.delete(principalOf(request).user.id, request.params.id);
      return { ok: true as const };
    },
  );
}

/** Exports a conversation as JSON or Markdown. */
function exportRoute(app: App, { conversations }: ConversationRoutesOptions): void {
  app.get(
    "/api/conversations/:id/export",
    {
      config,
      schema: {
        tags,
        summary: "Download a conversation as JSON or Markdown",
        params: IdParams,
        querystring: Type.Object(
          {
            format: Type.Union([Type.Literal("json"), Type.Literal("markdown")], {
              default: "json",
            }),
          },
          { additionalProperties: false },
        ),
        response: {
          200: contentTypes("The conversation, as JSON (format=json) or Markdown", {
            "application/json": ConversationWithMessages,
            "text/markdown": Type.String(),
          }),
          ...authErrors,
        },
      },
    },
    async (request, reply) => {
      const c = await conversations.get(principalOf(request).user.id, request.params.id);
      const markdownWanted = request.query.format === "markdown";
      const filename = `conversation-${c.id}.${markdownWanted ? "md" : "json"}`;
      reply.header("content-disposition", `attachment; filename="${filename}"`);
      if (markdownWanted) return reply.type("text/markdown; charset=utf-8").send(markdown(c));
      return full(c);
    },
  );
}

/** The streaming chat turn. */
function turnRoute(app: App, { chat, calls, heartbeatMs }: ConversationRoutesOptions): void {
  app.post(
    "/api/conversations/:id/messages",
    {
      config,
      schema: {
        tags,
        summary:
          "Send a message (or regenerate / edit) and stream the answer as SSE: start, delta…, done | error",
        params: IdParams,
        body: Type.Object(
          {
            content: Type.Optional(Type.String({ minLength: 1, maxLength: 100_000 })),
            regenerate: Type.Optional(Type.Boolean()),
            editMessageId: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
            model: Type.Optional(Type.String({ maxLength: 200 })),
            temperature: Type.Optional(Type.Number({ minimum: 0, maximum: 2 })),
            maxTokens: Type.Optional(Type.Integer({ minimum: 1, maximum: 32_768 })),
            system: Type.Optional(Type.String({ maxLength: 20_000 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: contentTypes("The answer as Server-Sent Events: start, delta…, done | error", {
            "text/event-stream": TurnEvent,
          }),
          429: ErrorEnvelope,
          ...authErrors,
        },
      },
    },
    async (request, reply) => {
      const userId = principalOf(request).user.id;
      const conversationId = request.params.id;
      const turn = await chat.prepare(userId, conversationId, request.body);
      const ctx = callContext(request, reply, calls);
      const events = await chat.open(ctx, request.body, turn);
      const sse = new SseStream(reply, heartbeatMs);
      await chat.stream(sse, request.log, { conversationId }, request.body, turn, events);
      return reply;
    },
  );
}

/** `/api/conversations*`: the caller's own conversations and the streaming chat turn. */
export const conversationRoutes: FastifyPluginAsyncTypebox<ConversationRoutesOptions> = async (
  app,
  options,
) => {
  collectionRoutes(app, options);
  itemRoutes(app, options);
  exportRoute(app, options);
  turnRoute(app, options);
};
