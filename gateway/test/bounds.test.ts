import { connect } from "node:net";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer, buildTestApp, JSON_CT, type Session, signUpAdmin } from "./helpers.js";

/** Sends raw bytes to `port` and resolves with everything the server answered before closing. */
function rawRequest(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let answer = "";
    socket.on("data", (d: Buffer) => {
      answer += d.toString("latin1");
    });
    socket.on("error", (err) => reject(Object.assign(err, { answer })));
    socket.on("close", () => resolve(answer));
    socket.end(request);
  });
}

describe("bounds of requests", () => {
  let app: FastifyInstance;
  let base: string;
  let port: number;
  let admin: Session;

  beforeAll(async () => {
    app = await buildTestApp();
    base = await app.listen({ port: 0, host: "127.0.0.1" });
    port = Number(new URL(base).port);
    admin = await signUpAdmin(app, "admin@example.org");
  });
  afterAll(async () => {
    await app.close();
  });

  const LIST_ROUTES = ["/api/conversations", "/api/admin/users"];
  const BAD = [
    ["offset", "1e20"],
    ["offset", "Infinity"],
    ["offset", "99999999999999999999"],
    ["offset", "-1"],
    ["offset", "1.5"],
    ["limit", "-1"],
    ["limit", "NaN"],
    ["limit", "1e20"],
    ["limit", "0"],
    ["limit", ""],
  ];

  for (const route of LIST_ROUTES) {
    it.each(BAD)(`${route}?%s=%s is 400 naming the parameter`, async (name, value) => {
      const res = await app.inject({
        method: "GET",
        url: `${route}?${name}=${encodeURIComponent(value)}`,
        headers: bearer(admin.token),
      });
      expect(res.statusCode).toBe(400);
      const { error } = res.json();
      expect(error.code).toBe("VALIDATION_ERROR");
      expect(error.message).toContain(name);
    });

    it(`${route} still takes the largest allowed offset`, async () => {
      const res = await app.inject({
        method: "GET",
        url: `${route}?offset=1000000&limit=1`,
        headers: bearer(admin.token),
      });
      expect(res.statusCode).toBe(200);
    });
  }

  it("a 64 KB header is 431 Request Header Fields Too Large over a real socket", async () => {
    const big = "x".repeat(64 * 1024);
    const answer = await rawRequest(
      port,
      `GET /health HTTP/1.1\r\nHost: localhost\r\nX-Big: ${big}\r\nConnection: close\r\n\r\n`,
    );
    expect(answer.split("\r\n")[0]).toBe("HTTP/1.1 431 Request Header Fields Too Large");
    const body = JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4));
    expect(body).toEqual({
      error: {
        code: "HEADERS_TOO_LARGE",
        type: "invalid_request_error",
        message: "Request headers are too large (at most 16 KiB)",
      },
    });
  });

  it("an absolute-form target is answered like its path: OpenAI's 401 under /v1, no-store", async () => {
    for (const path of ["/v1/chat/completions", "/v1/completions"]) {
      const answer = await rawRequest(
        port,
        `POST http://127.0.0.1:${port}${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
          `Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`,
      );
      const [head, body] = [
        answer.slice(0, answer.indexOf("\r\n\r\n")),
        answer.split("\r\n\r\n")[1],
      ];
      expect(head.split("\r\n")[0]).toBe("HTTP/1.1 401 Unauthorized");
      expect(head.toLowerCase()).toContain("cache-control: no-store");
      expect(JSON.parse(body ?? "")).toMatchObject({
        error: { param: null, code: "unauthorized" },
      });
    }
  });

  it("a 64 KB header is 431 for fetch too (no connection reset)", async () => {
    const res = await fetch(`${base}/health`, { headers: { "x-big": "y".repeat(64 * 1024) } });
    expect(res.status).toBe(431);
  });

  it("a body over 1 MiB is 413 in the envelope over a real socket", async () => {
    const res = await fetch(`${base}/api/conversations`, {
      method: "POST",
      headers: { ...bearer(admin.token), ...JSON_CT },
      body: JSON.stringify({ title: "x".repeat(2 * 1024 * 1024) }),
    });
    expect(res.status).toBe(413);
    expect(await res.json()).toEqual({
      error: {
        code: "PAYLOAD_TOO_LARGE",
        type: "invalid_request_error",
        message: expect.stringContaining("too large"),
      },
    });
    // better-auth's mount reads its own raw body: same limit, same envelope.
    const auth = await fetch(`${base}/api/auth/sign-in/email`, {
      method: "POST",
      headers: { origin: "http://localhost:3000", ...JSON_CT },
      body: JSON.stringify({ email: "a@example.org", password: "p".repeat(2 * 1024 * 1024) }),
    });
    expect(auth.status).toBe(413);
    expect(((await auth.json()) as { error: { code: string } }).error.code).toBe(
      "PAYLOAD_TOO_LARGE",
    );
  });
});
