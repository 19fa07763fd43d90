import type { FastifyInstance } from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import type { Config } from "../src/config.js";
import { type FakeLlm, startFakeLlm } from "./fake-llm.js";
import { bearer, chat, JSON_CT, type Session, signUpAdmin, testConfig } from "./helpers.js";

const completions = (f: FakeLlm) =>
  f.requests.filter((r) => r.path === "/v1/chat/completions").length;
const portOf = (url: string) => Number(new URL(url).port);

describe("load balancing across llm-servers", () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c().catch(() => undefined);
  });

  async function setup(servers: number, balancer: Partial<Config["balancer"]> = {}) {
    const fakes: FakeLlm[] = [];
    for (let i = 0; i < servers; i++) {
      const f = await startFakeLlm();
      fakes.push(f);
      cleanup.push(() => f.close());
    }
    const base = testConfig();
    const app: FastifyInstance = await buildApp(
      testConfig({
        llmServerUrls: fakes.map((f) => f.url),
        balancer: { ...base.balancer, ...balancer },
      }),
    );
    const url = await app.listen({ port: 0, host: "127.0.0.1" });
    cleanup.push(() => app.close());
    const s: Session = await signUpAdmin(app, "lb@example.org");
    const post = (body: unknown, signal?: AbortSignal) =>
      fetch(`${url}/v1/chat/completions`, {
        method: "POST",
        headers: { ...bearer(s.token), ...JSON_CT },
        body: JSON.stringify(body),
        ...(signal ? { signal } : {}),
      });
    const servers_ = async () =>
      (
        await app.inject({ method: "GET", url: "/api/admin/servers", headers: bearer(s.token) })
      ).json();
    return { fakes, app, post, servers: servers_ };
  }

  it("spreads requests and prefers the server with fewer outstanding requests", async () => {
    const { fakes, post } = await setup(2);
    const [a, b] = fakes as [FakeLlm, FakeLlm];
    for (let i = 0; i < 10; i++) expect((await post(chat("hi"))).status).toBe(200);
    expect(completions(a)).toBe(5);
    expect(completions(b)).toBe(5);
    // A stream held open on one server sends the next requests to the other.
    const controller = new AbortController();
    const slow = await post(chat("SLOW", { stream: true }), controller.signal);
    expect(slow.status).toBe(200);
    const busy = fakes.find(
      (f) =>
        f.requests.at(-1)?.body?.messages !== undefined &&
        JSON.stringify(f.requests.at(-1)?.body).includes("SLOW"),
    ) as FakeLlm;
    const idle = busy === a ? b : a;
    const before = completions(idle);
    for (let i = 0; i < 4; i++) expect((await post(chat("hi"))).status).toBe(200);
    expect(completions(idle) - before).toBe(4);
    controller.abort();
  });

  it("reads the load each server reports in its health check", async () => {
    const { fakes, post, app, servers } = await setup(2);
    const [a, b] = fakes as [FakeLlm, FakeLlm];
    a.health = { status: 200, body: { status: "ready", running: 8, queued: 3, max_running: 4 } };
    await app.services.balancer.checkAll();
    const list = (await servers()).servers;
    expect(list[0]).toMatchObject({
      url: a.url,
      state: "healthy",
      running: 8,
      queued: 3,
      maxRunning: 4,
      capacity: 8,
    });
    const before = completions(a);
    for (let i = 0; i < 6; i++) expect((await post(chat("hi"))).status).toBe(200);
    expect(completions(a)).toBe(before);
    expect(completions(b)).toBeGreaterThanOrEqual(6);
  });

  it("fails over when a server is killed, ejects it, and re-admits it after passing checks", async () => {
    const { fakes, post, app, servers } = await setup(2, {
      ejectAfterFailures: 3,
      readmitAfterChecks: 2,
    });
    const [a, b] = fakes as [FakeLlm, FakeLlm];
    const port = portOf(b.url);
    await b.close();
    const statuses = [];
    for (let i = 0; i < 12; i++) statuses.push((await post(chat("hi"))).status);
    expect(statuses.every((x) => x === 200)).toBe(true);
    expect(completions(a)).toBe(12);
    const ejected = (await servers()).servers[1];
    expect(ejected).toMatchObject({ url: b.url, state: "ejected" });
    expect(ejected.failures).toBeGreaterThanOrEqual(3);

    const revived = await startFakeLlm(port);
    cleanup.push(() => revived.close());
    await app.services.balancer.checkAll();
    expect((await servers()).servers[1].state).toBe("ejected");
    await app.services.balancer.checkAll();
    expect((await servers()).servers[1].state).toBe("healthy");
    for (let i = 0; i < 6; i++) expect((await post(chat("hi"))).status).toBe(200);
    expect(completions(revived)).toBeGreaterThan(0);
  });

  it("never ejects the last server, and ends a stream on a dying server with an in-band error", async () => {
    const { fakes, post, servers } = await setup(1, { ejectAfterFailures: 1 });
    const [a] = fakes as [FakeLlm];
    const res = await post(chat("SLOW", { stream: true }));
    expect(res.status).toBe(200);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toContain("Hel");
    await a.close();
    let rest = "";
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      rest += new TextDecoder().decode(r.value);
    }
    expect(rest).toContain('"error"');
    expect(rest).not.toContain("[DONE]");
    for (let i = 0; i < 3; i++) expect((await post(chat("hi"))).status).toBe(503);
    expect((await servers()).servers[0].state).not.toBe("ejected");
  });

  it("queues when every server is saturated, then answers 503 with Retry-After", async () => {
    const { post } = await setup(1, { maxOutstanding: 1, queueMax: 1, queueTimeoutMs: 400 });
    const hold = new AbortController();
    expect((await post(chat("SLOW", { stream: true }), hold.signal)).status).toBe(200);
    const waiting = post(chat("hi"));
    await new Promise((r) => setTimeout(r, 50));
    const full = await post(chat("hi"));
    expect(full.status).toBe(503);
    expect(full.headers.get("retry-after")).toBe("1");
    const timedOut = await waiting;
    expect(timedOut.status).toBe(503);
    expect(timedOut.headers.get("retry-after")).toBe("1");
    // A waiting request gets the slot as soon as it frees.
    const next = post(chat("hi"));
    await new Promise((r) => setTimeout(r, 50));
    hold.abort();
    expect((await next).status).toBe(200);
  });
});
