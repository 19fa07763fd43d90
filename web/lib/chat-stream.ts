/**
 * Sends a chat message and reads the answer as it streams:
 * POST /api/conversations/:id/messages → text/event-stream with
 * `start`, `delta`, `done` and `error` events.
 */
import { handleUnauthorized } from "./api";
import { ApiError, errorFromResponse } from "./http";
import { readSse } from "./sse";
import type { Message, SendMessageBody } from "./types";

export type ChatEvent =
  | { type: "start"; userMessage?: Message; assistantMessageId: string }
  | { type: "delta"; text: string }
  | {
      type: "done";
      message?: Message;
      usage?: { promptTokens: number; completionTokens: number };
      finishReason?: string;
    }
  | { type: "error"; error: { code: string; message: string } };

/** One SSE event of a turn as a ChatEvent; undefined for one to skip (bad JSON, empty delta). */
function chatEvent(name: string, json: string): ChatEvent | undefined {
  let data: Record<string, unknown>;
  try {
    data = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  switch (name) {
    case "start":
      return {
        type: "start",
        assistantMessageId: String(data.assistantMessageId ?? ""),
        userMessage: data.userMessage as Message | undefined,
      };
    case "delta":
      return typeof data.text === "string" && data.text
        ? { type: "delta", text: data.text }
        : undefined;
    case "done":
      return {
        type: "done",
        message: data.message as Message | undefined,
        usage: data.usage as { promptTokens: number; completionTokens: number } | undefined,
        finishReason: typeof data.finishReason === "string" ? data.finishReason : undefined,
      };
    case "error": {
      const e = (data.error ?? data) as { code?: unknown; message?: unknown };
      return {
        type: "error",
        error: {
          code: typeof e.code === "string" ? e.code : "STREAM_ERROR",
          message: typeof e.message === "string" ? e.message : "The answer failed.",
        },
      };
    }
  }
  return undefined;
}

export interface StreamChatOptions {
  signal?: AbortSignal;
  fetch?: typeof fetch;
}

export async function* streamChat(
  conversationId: string,
  body: SendMessageBody,
  options: StreamChatOptions = {},
): AsyncGenerator<ChatEvent> {
  const doFetch = options.fetch ?? fetch;
  let response: Response;
  try {
    response = await doFetch(`/api/conversations/${encodeURIComponent(conversationId)}/messages`, {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify(body),
      signal: options.signal,
    });
  } catch (err) {
    if (options.signal?.aborted) throw err;
    throw new ApiError(0, "NETWORK_ERROR", "Connection lost: the server could not be reached.");
  }
  if (!response.ok) {
    const error = await errorFromResponse(response);
    if (response.status === 401) handleUnauthorized();
    throw error;
  }
  if (!response.body) throw new ApiError(502, "EMPTY_STREAM", "The server sent no answer.");

  let finished = false;
  try {
    for await (const ev of readSse(response.body, { signal: options.signal })) {
      const event = chatEvent(ev.event, ev.data);
      if (!event) continue;
      if (event.type === "done" || event.type === "error") finished = true;
      yield event;
    }
  } catch (err) {
    if (options.signal?.aborted) throw err;
    throw new ApiError(0, "CONNECTION_LOST", "Connection lost while the answer was streaming.");
  }
  if (!finished && !options.signal?.aborted) {
    throw new ApiError(0, "CONNECTION_LOST", "Connection lost while the answer was streaming.");
  }
}
