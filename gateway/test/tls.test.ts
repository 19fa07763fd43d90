import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import { loadConfig } from "../src/config.js";
import { ORIGIN, selfSignedCert, testConfig } from "./helpers.js";

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request through Node's own client (a real TCP connection, not inject). */
function request(
  client: typeof http | typeof https,
  url: string,
  options: https.RequestOptions & { body?: string },
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = client.request(url, options, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        body += chunk;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end(options.body);
  });
}

describe("HTTPS from TLS_CERT_FILE / TLS_KEY_FILE", () => {
  let dir: string;
  let ca: string;
  let app: FastifyInstance;
  let port: number;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "gateway-tls-"));
    const { certFile, keyFile } = selfSignedCert(dir);
    ca = readFileSync(certFile, "utf8");
    // Through loadConfig, as the server entry point reads it.
    const { tls } = loadConfig({
      APP_ENV: "test",
      TLS_CERT_FILE: certFile,
      TLS_KEY_FILE: keyFile,
    });
    app = await buildApp(testConfig({ tls }));
    const address = await app.listen({ host: "127.0.0.1", port: 0 });
    expect(address).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    port = (app.server.address() as { port: number }).port;
  });

  afterAll(async () => {
    await app?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("serves requests over TLS with the configured certificate, and HSTS", async () => {
    // `ca` instead of rejectUnauthorized:false: the chain and host name are really checked.
    const res = await request(https, `https://127.0.0.1:${port}/health`, { ca });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ status: "ok" });
    expect(res.headers["strict-transport-security"]).toBe("max-age=31536000; includeSubDomains");
  });

  it("sets the session cookie with Secure at sign-up", async () => {
    const res = await request(https, `https://127.0.0.1:${port}/api/auth/sign-up/email`, {
      ca,
      method: "POST",
      headers: { origin: ORIGIN, "content-type": "application/json" },
      body: JSON.stringify({
        email: "tls@example.org",
        password: "correct-horse-battery",
        name: "T",
      }),
    });
    expect(res.status).toBe(200);
    const cookies = res.headers["set-cookie"] ?? [];
    const session = cookies.find((c) => c.includes("session_token="));
    expect(session).toMatch(/^__Secure-better-auth\.session_token=/);
    expect(session).toMatch(/;\s*Secure/i);
    expect(session).toMatch(/HttpOnly/i);
  });

  it("refuses plain HTTP on the TLS port", async () => {
    await expect(request(http, `http://127.0.0.1:${port}/health`, {})).rejects.toThrow();
  });

  it("sends no HSTS without TLS (and with an http PUBLIC_URL)", async () => {
    const plain = await buildApp(testConfig());
    try {
      const res = await plain.inject({ method: "GET", url: "/health" });
      expect(res.headers["strict-transport-security"]).toBeUndefined();
    } finally {
      await plain.close();
    }
  });
});
