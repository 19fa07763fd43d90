import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { Type } from "typebox";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import { HttpError } from "../src/errors.js";
import { DB_PROBE_CACHE_MS } from "../src/routes/health.js";
import { DATABASES, databaseConfig, postgresMissing, testConfig } from "./helpers.js";

const noPostgres = await postgresMissing();

/** Starts a local HTTP server on a free port; returns it and its base URL. */
async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return `http://127.0.0.1:${port}`;
}

/** A URL on which nothing listens: bind a free port, then release it. */
async function closedPortUrl(): Promise<string> {
  const server = createServer();
  const url = await listen(server);
  await new Promise((resolve) => server.close(resolve));
  return url;
}

describe("gateway app", () => {
  let fakeLlm: Server;
  let fakeLlmUrl: string;
  let deadUrl: string;
  let app: FastifyInstance;

  beforeAll(async () => {
    fakeLlm = createServer((req, res) => {
      const ok = req.url === "/health/ready";
      res.writeHead(ok ? 200 : 404, { "content-type": "application/json" });
      res.end(JSON.stringify(ok ? { status: "ready" } : { error: "nope" }));
    });
    fakeLlmUrl = await listen(fakeLlm);
    deadUrl = await closedPortUrl();
    app = await buildApp(testConfig({ llmServerUrls: [deadUrl] }));
  });

  afterAll(async () => {
    await app.close();
    await new Promise((resolve) => fakeLlm.close(resolve));
  });

  it("GET /health answers ok", async () => {
    const res = await app.inject({ method: "GET", url: "/health" });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: "ok" });
  });

  it("GET /health/ready is 503 when no llm-server answers", async () => {
    const res = await app.inject({ method: "GET", url: "/health/ready" });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({
      status: "unavailable",
      database: { ready: true },
      llmServers: [{ url: deadUrl, ready: false }],
    });
  });

  it("GET /health/ready is 200 when one llm-server is ready", async () => {
    const ready = await buildApp(testConfig({ llmServerUrls: [deadUrl, fakeLlmUrl] }));
    try {
      const res = await ready.inject({ method: "GET", url: "/health/ready" });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({
        status: "ready",
        database: { ready: true },
        llmServers: [
          { url: deadUrl, ready: false },
          { url: fakeLlmUrl, ready: true },
        ],
      });
    } finally {
      await ready.close();
    }
  });

  it.for(DATABASES)(
    "GET /health/ready is 503 when the database (%s) is unreachable, even with a ready llm-server",
    async (database, { skip }) => {
      skip(database === "postgres" && noPostgres, "PostgreSQL cannot run here");
      const dir = mkdtempSync(join(tmpdir(), "gateway-ready-"));
      const db = await databaseConfig(database, join(dir, "g.sqlite"));
      const ready = await buildApp(testConfig({ llmServerUrls: [fakeLlmUrl], ...db }));
      try {
        expect((await ready.inject({ method: "GET", url: "/health/ready" })).statusCode).toBe(200);
        // The connection (pool) is gone, as after a lost disk, a crash or a database restart.
        await ready.db.kysely.destroy();
        // The last probe's answer is reused for DB_PROBE_CACHE_MS.
        await new Promise((r) => setTimeout(r, DB_PROBE_CACHE_MS + 50));
        const res = await ready.inject({ method: "GET", url: "/health/ready" });
        expect(res.statusCode).toBe(503);
        expect(res.json()).toEqual({
          status: "unavailable",
          database: { ready: false },
          llmServers: [{ url: fakeLlmUrl, ready: true }],
        });
        // Liveness does not depend on it.
        expect((await ready.inject({ method: "GET", url: "/health" })).statusCode).toBe(200);
      } finally {
        await ready.close().catch(() => undefined);
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  it("unknown routes get a 404 in the error envelope", async () => {
    const res = await app.inject({ method: "GET", url: "/nope?x=1" });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({
      error: { code: "NOT_FOUND", type: "not_found_error", message: "Route GET /nope not found" },
    });
  });

  it("serves the OpenAPI document at /docs/json", async () => {
    const res = await app.inject({ method: "GET", url: "/docs/json" });
    expect(res.statusCode).toBe(200);
    const doc = res.json();
    expect(doc.openapi).toMatch(/^3\./);
    expect(doc.paths).toHaveProperty("/health");
    expect(doc.paths).toHaveProperty("/health/ready");
    expect(doc.paths["/health/ready"].get.responses).toHaveProperty("503");
  });

  it("serves the Swagger UI at /docs", async () => {
    const res = await app.inject({ method: "GET", url: "/docs/" });
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toMatch(/text\/html/);
  });
});

describe("error envelope", () => {
  let app: FastifyInstance;

  beforeAll(async () => {
    app = await buildApp(testConfig());
    // Extra routes, registered only in this test, exercise the shared error handler.
    app.post(
      "/echo",
      { schema: { body: Type.Object({ name: Type.String({ minLength: 1 }) }) } },
      async (request) => request.body,
    );
    app.get("/boom", async () => {
      throw new Error("db password=hunter2 leaked");
    });
    app.get<{ Params: { status: string } }>("/fail/:status", async (request) => {
      const status = Number(request.params.status);
      throw new HttpError(status, `CODE_${status}`, `failed with ${status}`);
    });
  });

  afterAll(async () => {
    await app.close();
  });

  it("validation errors are 400 and name the field", async () => {
    const res = await app.inject({ method: "POST", url: "/echo", payload: { name: "" } });
    expect(res.statusCode).toBe(400);
    const body = res.json();
    expect(body.error.code).toBe("VALIDATION_ERROR");
    expect(body.error.message).toContain("name");
  });

  it("missing required fields are 400 and name the field", async () => {
    const res = await app.inject({ method: "POST", url: "/echo", payload: {} });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.message).toContain("name");
  });

  it("malformed JSON is 400 in the envelope", async () => {
    const res = await app.inject({
      method: "POST",
      url: "/echo",
      headers: { "content-type": "application/json" },
      payload: "{not json",
    });
    expect(res.statusCode).toBe(400);
    expect(Object.keys(res.json())).toEqual(["error"]);
    expect(res.json().error.code).toEqual(expect.any(String));
  });

  it("unsupported media types are 415 in the envelope", async () => {
    const res = await app.inject({
      method: "POST",
      url: "/echo",
      headers: { "content-type": "application/x-nope" },
      payload: "x",
    });
    expect(res.statusCode).toBe(415);
    expect(res.json().error.code).toBe("UNSUPPORTED_MEDIA_TYPE");
  });

  it.each([
    [400, "invalid_request_error"],
    [401, "authentication_error"],
    [403, "permission_error"],
    [404, "not_found_error"],
    [409, "invalid_request_error"],
    [429, "rate_limit_error"],
    [503, "server_error"],
  ])("a %i is {error:{message,type,code}} with type %s", async (status, type) => {
    const res = await app.inject({ method: "GET", url: `/fail/${status}` });
    expect(res.statusCode).toBe(status);
    const { error } = res.json();
    expect(Object.keys(error).sort()).toEqual(["code", "message", "type"]);
    expect(error.type).toBe(type);
    // An HttpError's code and message are meant for the client, 5xx included.
    expect(error).toMatchObject({ code: `CODE_${status}`, message: `failed with ${status}` });
  });

  it("validation, media-type and size errors are invalid_request_error", async () => {
    const invalid = await app.inject({ method: "POST", url: "/echo", payload: { name: "" } });
    expect(invalid.json().error.type).toBe("invalid_request_error");
    const media = await app.inject({
      method: "POST",
      url: "/echo",
      headers: { "content-type": "application/x-nope" },
      payload: "x",
    });
    expect(media.json().error.type).toBe("invalid_request_error");
    const big = await app.inject({
      method: "POST",
      url: "/echo",
      headers: { "content-type": "application/json" },
      payload: JSON.stringify({ name: "x".repeat(2 * 1024 * 1024) }),
    });
    expect(big.statusCode).toBe(413);
    expect(big.json().error).toMatchObject({
      code: "PAYLOAD_TOO_LARGE",
      type: "invalid_request_error",
    });
  });

  it("unexpected errors are 500 without leaking internals", async () => {
    const res = await app.inject({ method: "GET", url: "/boom" });
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({
      error: { code: "INTERNAL_ERROR", type: "server_error", message: "Internal server error" },
    });
    expect(res.body).not.toContain("hunter2");
  });
});
