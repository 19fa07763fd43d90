import { SseParser } from "../sse.js";

/** The fields of an OpenAI chunk (or JSON answer) the gateway reads. */
export interface ChunkJson {
  model?: string;
  error?: { message?: string };
  choices?: {
    delta?: { role?: string | null; content?: string | null };
    message?: { content?: string | null };
    text?: string | null;
    finish_reason?: string | null;
  }[];
  usage?: { prompt_tokens?: number; completion_tokens?: number };
}

/**
 * One event of a completion stream: its `data:` payload as received (relayed unchanged) and
 * that payload parsed once (null for `[DONE]`).
 */
export interface Chunk {
  data: string;
  json: ChunkJson | null;
}

/** The stream's last event. */
export const DONE: Chunk = Object.freeze({ data: "[DONE]", json: null });

/** A payload parsed once. */
export function chunkOf(data: string): Chunk {
  return data === "[DONE]" ? DONE : { data, json: JSON.parse(data) as ChunkJson };
}

/** The chunks of an SSE byte stream. */
export async function* sseChunks(bytes: AsyncIterable<Uint8Array>): AsyncGenerator<Chunk> {
  const parser = new SseParser();
  for await (const part of bytes) for (const data of parser.push(part)) yield chunkOf(data);
}

/**
 * The text of a chunk that carries one generated token, or null for any other chunk (chat's
 * opening `role` chunk, a `finish_reason` chunk without a token, the usage chunk). llm-server
 * sends every token it counts in `usage`, the end-of-generation token too, each in a chunk of
 * its own, some with empty text: a stream cut before its usage chunk is billed one token per
 * such chunk, which is what the client received.
 */
export function tokenOf(json: ChunkJson): string | null {
  const c = json.choices?.[0];
  if (!c) return null;
  // Chat: the finish chunk's delta has no content (null); other servers may send the last
  // token with the finish_reason.
  if (c.delta) return c.delta.role || typeof c.delta.content !== "string" ? null : c.delta.content;
  // Completions: the finish chunk has empty text.
  if (typeof c.text !== "string" || (c.finish_reason && c.text === "")) return null;
  return c.text;
}
