import { describe, expect, it } from "vitest";
import { CompletionBody, estimatePromptTokens } from "../src/services/completion-body.js";

const parse = (text: string) => JSON.parse(text) as Record<string, unknown>;

describe("CompletionBody", () => {
  const messages = [{ role: "user", content: 'say "hi" ✓' }];

  it("sends the body with the limit set, the prompt part spliced in once", () => {
    const body = new CompletionBody("/v1/chat/completions", { model: "m", messages, n: 2 });
    expect(parse(body.upstreamJson(5))).toEqual({
      model: "m",
      messages,
      n: 2,
      max_tokens: 5,
      max_completion_tokens: 5,
    });
    expect(parse(body.upstreamJson(undefined))).toEqual({ model: "m", messages, n: 2 });
    expect(body.promptJson).toBe(JSON.stringify(messages));
  });

  it("asks a stream's usage chunk, keeping the client's other stream options", () => {
    const body = new CompletionBody("/v1/completions", {
      prompt: ["a", "b"],
      stream: true,
      stream_options: { include_usage: false, other: 1 },
    });
    expect(body.wantsUsage).toBe(false);
    expect(parse(body.upstreamJson(3))).toEqual({
      prompt: ["a", "b"],
      stream: true,
      stream_options: { include_usage: true, other: 1 },
      max_tokens: 3,
    });
  });

  it("a body that is only its prompt, and one without any, are valid JSON", () => {
    expect(
      parse(new CompletionBody("/v1/completions", { prompt: "x" }).upstreamJson(undefined)),
    ).toEqual({
      prompt: "x",
    });
    expect(
      parse(new CompletionBody("/v1/completions", { model: "m" }).upstreamJson(undefined)),
    ).toEqual({
      model: "m",
    });
  });

  it("estimates the prompt from its JSON bytes and message count", () => {
    const bytes = Buffer.byteLength(JSON.stringify(messages));
    expect(estimatePromptTokens({ messages })).toBe(Math.ceil(bytes / 3) + 4 + 8);
    expect(estimatePromptTokens({ prompt: "abcdef" })).toBe(Math.ceil(8 / 3) + 8);
  });
});
