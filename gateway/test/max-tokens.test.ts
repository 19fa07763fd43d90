import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import { estimatePromptTokens } from "../src/services/completions.js";
import { type FakeLlm, startFakeLlm } from "./fake-llm.js";
import {
  bearer,
  chat,
  JSON_CT,
  type Session,
  signUpAdmin,
  testConfig,
  userWithLimits,
} from "./helpers.js";

/**
 * The per-request token cap and the daily reservation hold whichever token field the
 * client sends (`max_tokens`, `max_completion_tokens`, both) and for every one of `n`
 * choices; a wrong type is a 400, never silently replaced by the cap.
 */
describe("max-tokens cap and reservation", () => {
  let fake: FakeLlm;
  let app: FastifyInstance;
  let admin: Session;

  beforeAll(async () => {
    fake = await startFakeLlm();
    app = await buildApp(testConfig({ llmServerUrls: [fake.url] }));
    admin = await signUpAdmin(app, "admin@example.org");
  });
  afterAll(async () => {
    await app.close();
    await fake.close();
  });

  const post = (s: Session, body: unknown, url = "/v1/chat/completions") =>
    app.inject({
      method: "POST",
      url,
      headers: { ...bearer(s.token), ...JSON_CT },
      payload: JSON.stringify(body),
    });
  const upstreamCalls = () => fake.requests.filter((r) => r.path.startsWith("/v1/")).length;
  const lastUpstream = () => fake.requests.at(-1)?.body ?? {};

  it("checks max_completion_tokens against the cap even when max_tokens is smaller", async () => {
    const s = await userWithLimits(app, admin, "mct@example.org", { maxTokens: 8 });
    const before = upstreamCalls();
    const res = await post(s, chat("hi", { max_tokens: 1, max_completion_tokens: 40 }));
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({ code: "max_tokens_exceeded" });
    expect(res.json().error.message).toContain("limit of 8 tokens per request");
    expect(upstreamCalls()).toBe(before);
  });

  it("forwards both token fields set to the clamped value", async () => {
    const s = await userWithLimits(app, admin, "both@example.org", { maxTokens: 8 });
    const alone = await post(s, chat("hi", { max_completion_tokens: 5 }));
    expect(alone.statusCode).toBe(200);
    expect(lastUpstream()).toMatchObject({ max_tokens: 5, max_completion_tokens: 5 });
    const none = await post(s, chat("hi"));
    expect(none.statusCode).toBe(200);
    expect(lastUpstream()).toMatchObject({ max_tokens: 8, max_completion_tokens: 8 });
    // /v1/completions knows only max_tokens.
    const completion = await post(s, { prompt: "hi" }, "/v1/completions");
    expect(completion.statusCode).toBe(200);
    expect(lastUpstream()).toMatchObject({ max_tokens: 8 });
    expect(lastUpstream()).not.toHaveProperty("max_completion_tokens");
  });

  it("counts every one of n choices against the cap", async () => {
    const s = await userWithLimits(app, admin, "n@example.org", { maxTokens: 8 });
    const over = await post(s, chat("hi", { max_tokens: 5, n: 2 }));
    expect(over.statusCode).toBe(400);
    expect(over.json().error.message).toContain("5 tokens for each of 2 choices");
    const shared = await post(s, chat("hi", { n: 2 }));
    expect(shared.statusCode).toBe(200);
    expect(lastUpstream()).toMatchObject({ n: 2, max_tokens: 4, max_completion_tokens: 4 });
  });

  it("reserves the daily quota for every choice", async () => {
    const body = chat("hi", { max_tokens: 4, n: 3 });
    const s = await userWithLimits(app, admin, "reserve@example.org", {
      tokensPerDay: estimatePromptTokens(body) + 6,
    });
    const res = await post(s, body);
    expect(res.statusCode).toBe(200);
    // 6 tokens left for 3 choices: 2 each, not 4 each (12 in all).
    expect(lastUpstream()).toMatchObject({ n: 3, max_tokens: 2, max_completion_tokens: 2 });
  });

  it("refuses wrong types with 400 on every LLM route, before llm-server", async () => {
    const s = await userWithLimits(app, admin, "types@example.org", { maxTokens: 4096 });
    const before = upstreamCalls();
    const cases: [string, unknown][] = [
      ["/v1/chat/completions", chat("hi", { max_tokens: "8" })],
      ["/v1/chat/completions", chat("hi", { max_completion_tokens: "40" })],
      ["/v1/chat/completions", chat("hi", { n: "2" })],
      // The route schema is the only check of n and the token fields (tokenRequest trusts it).
      ["/v1/chat/completions", chat("hi", { n: 0 })],
      ["/v1/chat/completions", chat("hi", { n: 17 })],
      ["/v1/chat/completions", chat("hi", { n: 1.5 })],
      ["/v1/chat/completions", chat("hi", { n: null })],
      ["/v1/chat/completions", chat("hi", { max_completion_tokens: -1 })],
      ["/v1/chat/completions", chat("hi", { max_tokens: 0 })],
      ["/v1/chat/completions", chat("hi", { max_tokens: 2.5 })],
      ["/v1/chat/completions", chat("hi", { stream: "true" })],
      ["/api/llm/chat", chat("hi", { max_tokens: "8", stream: true })],
      ["/v1/completions", { prompt: "hi", max_tokens: "8" }],
      ["/api/llm/generate", { prompt: "hi", max_tokens: "8" }],
      ["/api/analyze", { text: "hi", top_logprobs: "3" }],
      ["/api/llm/analyze", { text: 5 }],
    ];
    for (const [url, body] of cases) {
      const res = await post(s, body, url);
      expect(res.statusCode, `${url} ${JSON.stringify(body)}`).toBe(400);
      expect(res.json().error.message).toMatch(/must be|must have/);
    }
    const created = await app.inject({
      method: "POST",
      url: "/api/conversations",
      headers: { ...bearer(s.token), ...JSON_CT },
      payload: {},
    });
    const turn = await post(
      s,
      { content: "hi", maxTokens: "8" },
      `/api/conversations/${created.json().id}/messages`,
    );
    expect(turn.statusCode).toBe(400);
    expect(upstreamCalls()).toBe(before);
  });
});
