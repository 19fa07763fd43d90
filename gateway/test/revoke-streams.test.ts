import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import { type FakeLlm, startFakeLlm } from "./fake-llm.js";
import {
  bearer,
  chat,
  createApiKey,
  JSON_CT,
  type Session,
  signUp,
  signUpAdmin,
  testConfig,
} from "./helpers.js";
import { dataEvents, lastUsage } from "./two-servers.js";

const TTL = 500;

/** The whole text of a response, failing if it does not end within `ms`. */
async function readAll(res: Response, ms = 5000): Promise<string> {
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let text = "";
  const deadline = Date.now() + ms;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) {
      await reader.cancel();
      throw new Error(`the stream was still open after ${ms} ms: ${text}`);
    }
    const next = await Promise.race([
      reader.read(),
      new Promise<"late">((r) => setTimeout(() => r("late"), left)),
    ]);
    if (next === "late") continue;
    if (next.done) return text;
    text += decoder.decode(next.value);
  }
}

/**
 * A caller who loses access loses their running streams too: disabling, deleting,
 * revoking the API key, or demoting below what the stream needs ends it within the auth
 * cache lifetime (at once for changes made through this gateway), with an in-band error,
 * and the usage delivered so far is recorded.
 */
describe("streams of a caller who loses access", () => {
  let fake: FakeLlm;
  let app: FastifyInstance;
  let base: string;
  let admin: Session;

  beforeAll(async () => {
    fake = await startFakeLlm();
    const defaults = testConfig().limits;
    app = await buildApp(
      testConfig({
        llmServerUrls: [fake.url],
        authCacheTtlMs: TTL,
        limits: { ...defaults, user: { ...defaults.user, maxTokens: 50 } },
      }),
    );
    base = await app.listen({ port: 0, host: "127.0.0.1" });
    admin = await signUpAdmin(app, "admin@example.org");
  }, 30_000);
  afterAll(async () => {
    await app.close();
    await fake.close();
  });

  /** A user with an API key and a SLOW stream open on it (its first chunk read). */
  async function streaming(email: string, extra: Record<string, unknown> = {}) {
    const s = await signUp(app, email);
    const key = await createApiKey(app, s);
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: "POST",
      headers: { ...bearer(key.key), ...JSON_CT },
      body: JSON.stringify(chat("SLOW", { stream: true, ...extra })),
    });
    expect(res.status).toBe(200);
    return { s, key, res };
  }
  const adminCall = (method: "PATCH" | "DELETE", url: string, payload?: unknown) =>
    app.inject({
      method,
      url,
      headers: { ...bearer(admin.token), ...(payload ? JSON_CT : {}) },
      ...(payload ? { payload: payload as Record<string, unknown> } : {}),
    });

  async function expectRevoked(res: Response, userId: string, ms: number) {
    const t0 = Date.now();
    const events = dataEvents(await readAll(res, ms));
    expect(Date.now() - t0).toBeLessThan(ms);
    expect(JSON.parse(events[0] ?? "{}").choices[0].delta.content).toBe("Hel");
    expect(events).not.toContain("[DONE]");
    expect(JSON.parse(events.at(-1) ?? "{}").error).toMatchObject({
      code: "access_revoked",
      type: "permission_error",
    });
    let row: Record<string, unknown> | undefined;
    for (let i = 0; i < 50 && row?.status !== 403; i++) {
      await new Promise((r) => setTimeout(r, 20));
      row = await lastUsage(app, userId);
    }
    // What was delivered is billed: llm-server's prompt count and the one chunk sent.
    expect(row).toMatchObject({
      status: 403,
      outcome: "error",
      errorCode: "ACCESS_REVOKED",
      promptTokens: 5,
      completionTokens: 1,
    });
  }

  it("disabling a user ends their open stream at once, upstream too", async () => {
    const { s, res } = await streaming("disabled@example.org");
    const aborted = fake.nextAbort();
    expect(
      (await adminCall("PATCH", `/api/admin/users/${s.userId}`, { disabled: true })).statusCode,
    ).toBe(200);
    await expectRevoked(res, s.userId, 3000);
    await aborted;
  });

  it("revoking the API key ends the streams made with it", async () => {
    const { s, key, res } = await streaming("revoked@example.org");
    const revoke = await app.inject({
      method: "DELETE",
      url: `/api/user/api-keys/${key.id}`,
      headers: bearer(s.token),
    });
    expect(revoke.statusCode).toBe(200);
    await expectRevoked(res, s.userId, 3000);
  });

  it("deleting the account ends its streams", async () => {
    const { s, res } = await streaming("deleted@example.org");
    expect((await adminCall("DELETE", `/api/admin/users/${s.userId}`)).statusCode).toBe(200);
    const events = dataEvents(await readAll(res, 3000));
    expect(JSON.parse(events.at(-1) ?? "{}").error).toMatchObject({ code: "access_revoked" });
  });

  it("a change made by another process (bin/admin disable) ends it within the cache lifetime", async () => {
    const { s, res } = await streaming("cli-disabled@example.org");
    // What `bin/admin disable` writes, from outside this gateway (no cache is cleared).
    await app.db.kysely.updateTable("user").set({ banned: 1 }).where("id", "=", s.userId).execute();
    await expectRevoked(res, s.userId, 2 * TTL + 2500);
  });

  it("demoting a user ends the streams that need more than the new role allows", async () => {
    const s = await signUp(app, "demoted@example.org");
    await app.db.kysely
      .updateTable("user")
      .set({ role: "admin" })
      .where("id", "=", s.userId)
      .execute();
    const key = await createApiKey(app, s);
    const open = (maxTokens: number) =>
      fetch(`${base}/v1/chat/completions`, {
        method: "POST",
        headers: { ...bearer(key.key), ...JSON_CT },
        body: JSON.stringify(chat("SLOW", { stream: true, max_tokens: maxTokens })),
      });
    // As an admin (no cap): 100 tokens; the user role allows 50 per request.
    const big = await open(100);
    expect(big.status).toBe(200);
    const small = await open(10);
    expect(small.status).toBe(200);
    const demote = await adminCall("PATCH", `/api/admin/users/${s.userId}`, { role: "user" });
    expect(demote.statusCode).toBe(200);
    const events = dataEvents(await readAll(big, 3000));
    const error = JSON.parse(events.at(-1) ?? "{}").error;
    expect(error).toMatchObject({ code: "access_revoked" });
    expect(error.message).toContain("limit is 50 tokens");
    // Within the new limit: it goes on (until the client leaves).
    await expect(readAll(small, 2 * TTL + 500)).rejects.toThrow(/still open/);
  });

  it("a chat turn ends with an error event and keeps what was written", async () => {
    const s = await signUp(app, "chat-disabled@example.org");
    const created = await app.inject({
      method: "POST",
      url: "/api/conversations",
      headers: { ...bearer(s.token), ...JSON_CT },
      payload: {},
    });
    const id = created.json().id as string;
    const res = await fetch(`${base}/api/conversations/${id}/messages`, {
      method: "POST",
      headers: { ...bearer(s.token), ...JSON_CT },
      body: JSON.stringify({ content: "SLOW" }),
    });
    expect(res.status).toBe(200);
    const disable = adminCall("PATCH", `/api/admin/users/${s.userId}`, { disabled: true });
    const [text] = await Promise.all([readAll(res, 3000), disable]);
    expect(text).toContain("event: error");
    expect(text).toContain('"code":"ACCESS_REVOKED"');
    expect(text).not.toContain("event: done");
    const messages = await app.db.kysely
      .selectFrom("message")
      .select(["role", "content", "finishReason"])
      .where("conversationId", "=", id)
      .orderBy("seq")
      .execute();
    expect(messages.at(-1)).toMatchObject({
      role: "assistant",
      content: "Hel",
      finishReason: "error",
    });
  });
});
