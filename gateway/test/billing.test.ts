import { afterEach, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import { estimatePromptTokens } from "../src/services/completions.js";
import { startFakeLlm } from "./fake-llm.js";
import { bearer, chat, JSON_CT, signUp, testConfig } from "./helpers.js";
import { type Cleanup, lastUsage, runCleanup, twoServers } from "./two-servers.js";

/**
 * After a fault the bill and the code are still right: a cancelled stream is billed
 * llm-server's prompt count (its `x-prompt-tokens` header), not the gateway's estimate;
 * a gateway-queue timeout answers `LLM_BUSY` as documented, not a generic 503.
 */
describe("billing and codes after a fault", () => {
  const cleanup: Cleanup = [];
  afterEach(() => runCleanup(cleanup));

  it("a stream the client leaves is billed llm-server's prompt count", async () => {
    const { a, app, url } = await twoServers(cleanup);
    const s = await signUp(app, "bill@example.org");
    const body = chat("SLOW and a prompt long enough for the estimate to differ", {
      stream: true,
    });
    expect(estimatePromptTokens(body)).not.toBe(5);
    const controller = new AbortController();
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { ...bearer(s.token), ...JSON_CT },
      body: JSON.stringify(body),
      signal: controller.signal,
    });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toContain("Hel");
    const aborted = a.nextAbort();
    controller.abort();
    await aborted;
    let row: Record<string, unknown> | undefined;
    for (let i = 0; i < 50 && !row; i++) {
      await new Promise((r) => setTimeout(r, 20));
      await app.db.drain();
      row = await app.db.kysely
        .selectFrom("usage_record")
        .selectAll()
        .where("userId", "=", s.userId)
        .executeTakeFirst();
    }
    expect(row).toMatchObject({
      status: 499,
      outcome: "cancelled",
      promptTokens: 5,
      completionTokens: 1,
      quotaTokens: 6,
    });
  });

  it("a cut stream is billed one token per token chunk, empty ones too, never the role chunk", async () => {
    const a = await startFakeLlm();
    cleanup.push(() => a.close());
    const app = await buildApp(testConfig({ llmServerUrls: [a.url] }));
    const url = await app.listen({ port: 0, host: "127.0.0.1" });
    cleanup.push(() => app.close());
    const s = await signUp(app, "empty-token@example.org");
    for (const [path, body] of [
      ["/v1/chat/completions", chat("EMPTYTOKEN", { stream: true })],
      ["/v1/completions", { model: "m", prompt: "EMPTYTOKEN", stream: true }],
    ] as const) {
      const controller = new AbortController();
      const res = await fetch(`${url}${path}`, {
        method: "POST",
        headers: { ...bearer(s.token), ...JSON_CT },
        body: JSON.stringify(body),
        signal: controller.signal,
      });
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      const decoder = new TextDecoder();
      // Both tokens delivered: "Hel", then the empty one.
      let text = "";
      while ((text.match(/"finish_reason":null/g) ?? []).length < (path.includes("chat") ? 3 : 2))
        text += decoder.decode((await reader.read()).value);
      const aborted = a.nextAbort();
      controller.abort();
      await aborted;
      let row: Record<string, unknown> | undefined;
      for (let i = 0; i < 50 && row?.route !== path; i++) {
        await new Promise((r) => setTimeout(r, 20));
        row = await lastUsage(app, s.userId);
      }
      expect(row, path).toMatchObject({ route: path, outcome: "cancelled", completionTokens: 2 });
    }
  });

  it("a request that waited out the gateway queue gets 503 LLM_BUSY", async () => {
    const fake = await startFakeLlm();
    cleanup.push(() => fake.close());
    const base = testConfig();
    const app = await buildApp(
      testConfig({
        llmServerUrls: [fake.url],
        balancer: { ...base.balancer, maxOutstanding: 1, queueTimeoutMs: 300 },
      }),
    );
    cleanup.push(() => app.close());
    const url = await app.listen({ port: 0, host: "127.0.0.1" });
    const s = await signUp(app, "busy@example.org");
    const post = (path: string, body: unknown, signal?: AbortSignal) =>
      fetch(`${url}${path}`, {
        method: "POST",
        headers: { ...bearer(s.token), ...JSON_CT },
        body: JSON.stringify(body),
        ...(signal ? { signal } : {}),
      });
    const hold = new AbortController();
    const held = await post("/v1/chat/completions", chat("SLOW", { stream: true }), hold.signal);
    expect(held.status).toBe(200);
    const v1 = await post("/v1/chat/completions", chat("hi"));
    expect(v1.status).toBe(503);
    expect(v1.headers.get("retry-after")).toBe("1");
    expect(((await v1.json()) as { error: unknown }).error).toMatchObject({
      code: "llm_busy",
      type: "server_error",
      message: "Every model server is busy; try again shortly",
    });
    const api = await post("/api/llm/chat", chat("hi"));
    expect(api.status).toBe(503);
    expect(((await api.json()) as { error: unknown }).error).toMatchObject({ code: "LLM_BUSY" });
    hold.abort();
  });

  it("no reachable server is 503 LLM_UNAVAILABLE, in both envelopes", async () => {
    const dead = await startFakeLlm();
    await dead.close();
    const app = await buildApp(testConfig({ llmServerUrls: [dead.url] }));
    cleanup.push(() => app.close());
    const s = await signUp(app, "none@example.org");
    const res = await app.inject({
      method: "POST",
      url: "/v1/chat/completions",
      headers: { ...bearer(s.token), ...JSON_CT },
      payload: chat("hi"),
    });
    expect(res.statusCode).toBe(503);
    expect(res.json().error).toMatchObject({ code: "llm_unavailable" });
  });
});
