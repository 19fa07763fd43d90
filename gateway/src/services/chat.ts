import { randomUUID } from "node:crypto";
import type { FastifyBaseLogger } from "fastify";
import { gatewayError, HttpError } from "../errors.js";
import type { SseStream } from "../sse.js";
import type { Chunk, ChunkJson } from "./chunks.js";
import type { CompletionService } from "./completions.js";
import type { ConversationService, MessageInfo, TurnRequest } from "./conversations.js";
import { upstreamError } from "./llm-client.js";
import type { CallContext } from "./metering.js";

export interface ChatOptions extends TurnRequest {
  model?: string | undefined;
  temperature?: number | undefined;
  maxTokens?: number | undefined;
  system?: string | undefined;
}

type Turn = Awaited<ReturnType<ConversationService["prepareTurn"]>>;

export function messageBody(m: MessageInfo) {
  return { ...m, createdAt: m.createdAt.toISOString() };
}

/**
 * One chat turn of a conversation, streamed to the browser as SSE events
 * `start`, `delta`…, then `done` or `error`. The answer is written once at the end;
 * a stopped stream is kept with finishReason "cancelled", a failed one with "error".
 */
export class ChatService {
  constructor(
    private readonly completions: CompletionService,
    private readonly conversations: ConversationService,
  ) {}

  /** Validates and plans the user's side first (nothing written), so errors are plain JSON. */
  prepare(userId: string, conversationId: string, options: ChatOptions) {
    return this.conversations.prepareTurn(userId, conversationId, options);
  }

  /**
   * Admits and starts the model call (limits, cache, balancing), then writes the turn's
   * user side. Anything that fails before the answer started — a limit (429), a prompt
   * over the model's context (llm-server's 400 and message), no server (503) — throws
   * here, before any streaming, and leaves no row behind.
   */
  async open(ctx: CallContext, options: ChatOptions, turn: Turn): Promise<AsyncGenerator<Chunk>> {
    const messages = [
      ...(options.system ? [{ role: "system", content: options.system }] : []),
      ...turn.history
        .filter((m) => m.content !== "")
        .map((m) => ({ role: m.role, content: m.content })),
    ];
    const body = {
      ...(options.model ? { model: options.model } : {}),
      messages,
      stream: true,
      stream_options: { include_usage: true },
      ...(options.temperature !== undefined ? { temperature: options.temperature } : {}),
      ...(options.maxTokens !== undefined ? { max_tokens: options.maxTokens } : {}),
    };
    const started = await this.completions.start(ctx, "/v1/chat/completions", body);
    if (started.kind === "json") {
      // llm-server refused before streaming (e.g. 400 context_length_exceeded).
      if (started.status >= 400) throw upstreamError(started.status, started.body);
      throw new HttpError(502, "UPSTREAM_ERROR", "The model server did not stream");
    }
    try {
      await this.conversations.commitTurn(turn);
    } catch (err) {
      await started.events.return(undefined);
      throw err;
    }
    return started.events;
  }

  /**
   * Streams the turn's answer to the browser (`start`, `delta`…, then `done` or `error`) and
   * saves it once at the end: `cancelled` when the client left, `error` when it failed.
   */
  async stream(
    sse: SseStream,
    log: FastifyBaseLogger,
    ids: { conversationId: string },
    options: ChatOptions,
    turn: Turn,
    events: AsyncGenerator<Chunk>,
  ): Promise<void> {
    const assistantMessageId = randomUUID();
    await sse.event("start", {
      ...(turn.userMessage ? { userMessage: messageBody(turn.userMessage) } : {}),
      assistantMessageId,
    });
    const answer = new Answer(options.model ?? null);
    const save = (reason: string) =>
      this.conversations.saveAssistant(ids.conversationId, {
        id: assistantMessageId,
        content: answer.text,
        finishReason: reason,
        model: answer.model,
        promptTokens: answer.usage.promptTokens || null,
        completionTokens: answer.usage.completionTokens || null,
      });
    // After a failure: keeps what was written, unless the conversation is gone (then the
    // client learns of the failure from the error event alone).
    const keep = (reason: string) =>
      save(reason).then(
        () => undefined,
        (err: unknown) => {
          if (!(err instanceof HttpError && err.statusCode === 404)) throw err;
        },
      );
    try {
      for await (const { json } of events) {
        const delta = json && answer.add(json);
        if (delta) await sse.event("delta", { text: delta });
      }
      if (sse.signal.aborted) return await keep("cancelled");
      const reason = answer.finishReason ?? "stop";
      const message = await save(reason);
      const usage = answer.usage;
      await sse.event("done", { message: messageBody(message), usage, finishReason: reason });
    } catch (err) {
      if (sse.signal.aborted) return await keep("cancelled");
      if (!(err instanceof HttpError)) log.error({ err }, "chat stream failed");
      await keep("error");
      await sse.event("error", errorEvent(err));
    } finally {
      sse.end();
    }
  }
}

/** The assistant's answer as its chunks arrive. */
class Answer {
  text = "";
  finishReason: string | null = null;
  usage = { promptTokens: 0, completionTokens: 0 };

  constructor(public model: string | null) {}

  /** Takes one chunk in; returns its new text (null: none). An in-band error throws. */
  add(json: ChunkJson): string | null {
    if (json.error) {
      throw new HttpError(502, "UPSTREAM_ERROR", json.error.message ?? "Generation failed");
    }
    if (json.model) this.model = json.model;
    const choice = json.choices?.[0];
    if (choice?.finish_reason) this.finishReason = choice.finish_reason;
    if (json.usage) {
      this.usage = {
        promptTokens: json.usage.prompt_tokens ?? 0,
        completionTokens: json.usage.completion_tokens ?? 0,
      };
    }
    const delta = choice?.delta?.content;
    if (!delta) return null;
    this.text += delta;
    return delta;
  }
}

/** The `error` event of a failed turn: a client error's own message, a server error's generic one. */
function errorEvent(err: unknown) {
  const known = err instanceof HttpError;
  return gatewayError(
    known ? err.statusCode : 502,
    known ? err.code : "UPSTREAM_ERROR",
    known && err.statusCode < 500 ? err.message : publicMessage(err),
  );
}

function publicMessage(err: unknown): string {
  if (err instanceof HttpError && (err.statusCode === 503 || err.statusCode === 504)) {
    return err.message;
  }
  return "The model server failed";
}
