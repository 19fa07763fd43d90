import type { Chunk, ChunkJson } from "./chunks.js";

/** About 4 bytes a token of generated text: what an answer without usage is counted as. */
const BYTES_PER_TOKEN = 4;

/** Tokens of generated text, counted on our side (an upstream that reports no usage). */
export function estimateTextTokens(text: string): number {
  return text === "" ? 0 : Math.ceil(Buffer.byteLength(text) / BYTES_PER_TOKEN);
}

/**
 * A JSON answer's usage: upstream's `usage` when it reports one; else counted on our side,
 * marked estimated — the prompt from llm-server's count header or the gateway's estimate,
 * the answer from the text of every choice.
 */
export function answerUsage(
  json: ChunkJson,
  promptHeader: number | null,
  promptEstimate: number,
): { promptTokens: number; completionTokens: number; estimated: number } {
  const usage = json.usage;
  if (usage && typeof usage.completion_tokens === "number") {
    return {
      promptTokens: usage.prompt_tokens ?? promptHeader ?? promptEstimate,
      completionTokens: usage.completion_tokens,
      estimated: 0,
    };
  }
  const text = (json.choices ?? []).map((c) => c.message?.content ?? c.text ?? "").join("");
  return {
    promptTokens: promptHeader ?? promptEstimate,
    completionTokens: estimateTextTokens(text),
    estimated: 1,
  };
}

/** `chunk` naming `model` instead (re-serialised: the payload relayed says the same). */
export function renamed(chunk: Chunk, model: string): Chunk {
  if (chunk.json === null) return chunk;
  const json = { ...chunk.json, model };
  return { data: JSON.stringify(json), json };
}
