import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import { type FakeLlm, startFakeLlm } from "./fake-llm.js";
import { bearer, browser, JSON_CT, ORIGIN, type Session, signUp, testConfig } from "./helpers.js";

const EVIL = "https://evil.example";

describe("security headers", () => {
  let fake: FakeLlm;
  let app: FastifyInstance;
  let s: Session;

  beforeAll(async () => {
    fake = await startFakeLlm();
    app = await buildApp(testConfig({ llmServerUrls: [fake.url] }));
    s = await signUp(app, "headers@example.org");
  });
  afterAll(async () => {
    await app.close();
    await fake.close();
  });

  it("JSON answers forbid framing, sniffing and referrers; no HSTS over http", async () => {
    const res = await app.inject({ method: "GET", url: "/health" });
    expect(res.statusCode).toBe(200);
    const csp = String(res.headers["content-security-policy"]);
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("default-src 'none'");
    expect(res.headers["x-content-type-options"]).toBe("nosniff");
    expect(res.headers["referrer-policy"]).toBe("no-referrer");
    expect(res.headers["x-frame-options"]).toBe("DENY");
    expect(res.headers["strict-transport-security"]).toBeUndefined();
  });

  it("errors and 404s carry the same headers", async () => {
    const res = await app.inject({ method: "GET", url: "/api/nope" });
    expect(res.statusCode).toBe(404);
    expect(String(res.headers["content-security-policy"])).toContain("frame-ancestors 'none'");
    expect(res.headers["x-content-type-options"]).toBe("nosniff");
    expect(res.headers["cache-control"]).toBe("no-store");
  });

  it("the Swagger UI gets a CSP that lets it load its own scripts, still not framable", async () => {
    const page = await app.inject({ method: "GET", url: "/docs/" });
    expect(page.statusCode).toBe(200);
    const csp = String(page.headers["content-security-policy"]);
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self' 'unsafe-inline'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain("upgrade-insecure-requests");
    // Every script the page references is served from /docs under the same policy.
    const scripts = [...page.body.matchAll(/<script src="\.\/([^"]+)"/g)].map((m) => m[1]);
    expect(scripts.length).toBeGreaterThan(0);
    for (const src of scripts) {
      const js = await app.inject({ method: "GET", url: `/docs/${src}` });
      expect(js.statusCode, src).toBe(200);
    }
    const doc = await app.inject({ method: "GET", url: "/docs/json" });
    expect(doc.statusCode).toBe(200);
  });

  it("personal answers are no-store: auth, user, conversations, models, chat", async () => {
    const session = await app.inject({
      method: "GET",
      url: "/api/auth/get-session",
      headers: browser(s),
    });
    expect(session.headers["cache-control"]).toBe("no-store");
    for (const url of ["/api/user", "/api/conversations", "/api/user/api-keys", "/v1/models"]) {
      const res = await app.inject({ method: "GET", url, headers: bearer(s.token) });
      expect(res.statusCode, url).toBeLessThan(500);
      expect(res.headers["cache-control"], url).toBe("no-store");
    }
    const chat = await app.inject({
      method: "POST",
      url: "/api/llm/chat",
      headers: { ...bearer(s.token), ...JSON_CT },
      payload: { model: "fake-model", messages: [{ role: "user", content: "hi" }] },
    });
    expect(chat.statusCode).toBe(200);
    expect(chat.headers["cache-control"]).toBe("no-store");
  });

  it("HSTS is sent when the public URL is https", async () => {
    const tls = await buildApp(
      testConfig({
        publicUrl: "https://chat.example.org",
        trustedOrigins: ["https://chat.example.org"],
      }),
    );
    try {
      const res = await tls.inject({ method: "GET", url: "/health" });
      expect(res.headers["strict-transport-security"]).toMatch(/^max-age=31536000/);
    } finally {
      await tls.close();
    }
  });
});

describe("CORS", () => {
  let fake: FakeLlm;
  let app: FastifyInstance;
  let s: Session;

  beforeAll(async () => {
    fake = await startFakeLlm();
    app = await buildApp(
      testConfig({ llmServerUrls: [fake.url], trustedOrigins: [ORIGIN, "https://app.example"] }),
    );
    s = await signUp(app, "cors@example.org");
  });
  afterAll(async () => {
    await app.close();
    await fake.close();
  });

  it("echoes an allowed origin with credentials", async () => {
    for (const origin of [ORIGIN, "https://app.example"]) {
      const res = await app.inject({ method: "GET", url: "/health", headers: { origin } });
      expect(res.headers["access-control-allow-origin"]).toBe(origin);
      expect(res.headers["access-control-allow-credentials"]).toBe("true");
      expect(String(res.headers.vary)).toMatch(/origin/i);
    }
  });

  it("never reflects an origin that is not listed", async () => {
    const res = await app.inject({ method: "GET", url: "/api/user", headers: { origin: EVIL } });
    expect(res.headers["access-control-allow-origin"]).toBeUndefined();
    expect(res.headers["access-control-allow-credentials"]).toBeUndefined();
    const nullOrigin = await app.inject({
      method: "GET",
      url: "/health",
      headers: { origin: "null" },
    });
    expect(nullOrigin.headers["access-control-allow-origin"]).toBeUndefined();
  });

  it("answers a preflight from an allowed origin, and gives nothing to another", async () => {
    const ok = await app.inject({
      method: "OPTIONS",
      url: "/api/user",
      headers: {
        origin: "https://app.example",
        "access-control-request-method": "PATCH",
        "access-control-request-headers": "content-type",
      },
    });
    expect(ok.statusCode).toBe(204);
    expect(ok.headers["access-control-allow-origin"]).toBe("https://app.example");
    expect(String(ok.headers["access-control-allow-methods"])).toContain("PATCH");
    const evil = await app.inject({
      method: "OPTIONS",
      url: "/api/user",
      headers: { origin: EVIL, "access-control-request-method": "PATCH" },
    });
    expect(evil.headers["access-control-allow-origin"]).toBeUndefined();
  });

  it("a listed origin is also trusted by the CSRF check; an unlisted one is refused", async () => {
    const ok = await app.inject({
      method: "PATCH",
      url: "/api/user",
      headers: { cookie: s.cookie, origin: "https://app.example", ...JSON_CT },
      payload: { name: "Renamed" },
    });
    expect(ok.statusCode).toBe(200);
    const evil = await app.inject({
      method: "PATCH",
      url: "/api/user",
      headers: { cookie: s.cookie, origin: EVIL, ...JSON_CT },
      payload: { name: "Evil" },
    });
    expect(evil.statusCode).toBe(403);
  });

  it("a streamed answer carries the CORS headers too", async () => {
    const res = await app.inject({
      method: "POST",
      url: "/api/llm/chat",
      headers: { ...bearer(s.token), origin: ORIGIN, ...JSON_CT },
      payload: { model: "fake-model", messages: [{ role: "user", content: "hi" }], stream: true },
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toMatch(/text\/event-stream/);
    expect(res.headers["access-control-allow-origin"]).toBe(ORIGIN);
    expect(res.headers["cache-control"]).toBe("no-store");
    expect(String(res.headers["content-security-policy"])).toContain("frame-ancestors 'none'");
  });
});
