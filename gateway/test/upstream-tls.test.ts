import { chmodSync, copyFileSync, mkdtempSync, rmSync } from "node:fs";
import type { ServerOptions } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import { loadConfig, type UpstreamTlsConfig } from "../src/config.js";
import { type FakeLlm, startFakeLlm } from "./fake-llm.js";
import { bearer, catchConfigError, chat, JSON_CT, signUp, testConfig } from "./helpers.js";
import { issue, makeCa, type Pair } from "./pki.js";
import { type Cleanup, dataEvents, runCleanup } from "./two-servers.js";

/**
 * The gateway in front of an https:// llm-server (the fake, over real TLS sockets): the
 * server's certificate is verified — chain, validity dates and host name — and the gateway
 * presents its client certificate to a server that asks for one (mutual TLS).
 */
describe("TLS between the gateway and the llm-servers", () => {
  let dir: string;
  let ca: Pair;
  let good: Pair;
  let client: Pair;
  let untrusted: Pair;
  let expired: Pair;
  let elsewhere: Pair;
  const cleanup: Cleanup = [];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "gateway-upstream-tls-"));
    ca = makeCa(dir, "ca");
    const otherCa = makeCa(dir, "other-ca");
    good = issue(dir, "llm", ca, "IP:127.0.0.1,DNS:localhost");
    client = issue(dir, "gateway", ca, "DNS:gateway");
    untrusted = issue(dir, "untrusted", otherCa, "IP:127.0.0.1");
    expired = issue(dir, "expired", ca, "IP:127.0.0.1", -1);
    elsewhere = issue(dir, "elsewhere", ca, "DNS:llm.example.org");
  });
  afterEach(() => runCleanup(cleanup));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const withCa = (): UpstreamTlsConfig => ({ ca: ca.cert, cert: undefined, key: undefined });
  const withClientCert = (): UpstreamTlsConfig => ({
    ca: ca.cert,
    cert: client.cert,
    key: client.key,
  });

  /** A fake llm-server serving `server` and a gateway (on a real port) using `upstreamTls`. */
  async function stack(server: ServerOptions, upstreamTls: UpstreamTlsConfig) {
    const llm: FakeLlm = await startFakeLlm(0, undefined, server);
    cleanup.push(() => llm.close());
    const app: FastifyInstance = await buildApp(
      testConfig({ llmServerUrls: [llm.url], upstreamTls }),
    );
    const url = await app.listen({ port: 0, host: "127.0.0.1" });
    cleanup.push(() => app.close());
    await app.services.balancer.checkAll();
    const s = await signUp(app, "tls@example.org");
    const complete = (stream: boolean) =>
      fetch(`${url}/v1/chat/completions`, {
        method: "POST",
        headers: { ...bearer(s.token), ...JSON_CT },
        body: JSON.stringify(chat("hi", { stream })),
      });
    const state = () => app.services.balancer.snapshot().servers[0];
    const ready = async () => (await fetch(`${url}/health/ready`)).json();
    return { llm, complete, state, ready };
  }

  it("streams over mutual TLS; health checks and readiness pass", async () => {
    const { llm, complete, state, ready } = await stack(
      { cert: good.cert, key: good.key, ca: ca.cert, requestCert: true, rejectUnauthorized: true },
      withClientCert(),
    );
    expect(llm.url).toMatch(/^https:/);
    expect(state()).toMatchObject({ state: "healthy", lastError: null });
    expect(await ready()).toMatchObject({ llmServers: [{ url: llm.url, ready: true }] });
    const res = await complete(true);
    expect(res.status).toBe(200);
    const events = dataEvents(await res.text());
    expect(events.at(-1)).toBe("[DONE]");
    expect(events.join("")).toContain("world");
    const json = await complete(false);
    expect(json.status).toBe(200);
    expect(llm.requests.filter((r) => r.path === "/v1/chat/completions")).toHaveLength(2);
  });

  it.each([
    ["signed by a CA the gateway does not trust", () => untrusted],
    ["expired", () => expired],
    ["issued for another host name", () => elsewhere],
  ])("refuses a server whose certificate is %s", async (_, cert) => {
    const { llm, complete, state, ready } = await stack(
      { cert: cert().cert, key: cert().key },
      withCa(),
    );
    expect(state()?.state).toBe("unhealthy");
    expect(state()?.lastError).toMatch(/health check failed/);
    expect(await ready()).toMatchObject({ status: "unavailable", llmServers: [{ ready: false }] });
    const res = await complete(true);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ error: { code: "llm_unavailable" } });
    // Not one HTTP request reached the server: TLS stopped each before it was sent.
    expect(llm.requests).toHaveLength(0);
  });

  it("trusts no private CA unless LLM_SERVER_CA_FILE names it", async () => {
    const { llm, complete, state } = await stack(
      { cert: good.cert, key: good.key },
      {
        ca: undefined,
        cert: undefined,
        key: undefined,
      },
    );
    expect(state()?.state).toBe("unhealthy");
    expect((await complete(false)).status).toBe(503);
    expect(llm.requests).toHaveLength(0);
  });

  it("gets no answer from a server asking for a client certificate it was not given", async () => {
    const { llm, complete, state } = await stack(
      { cert: good.cert, key: good.key, ca: ca.cert, requestCert: true, rejectUnauthorized: true },
      withCa(),
    );
    expect(state()?.state).toBe("unhealthy");
    expect((await complete(true)).status).toBe(503);
    expect(llm.requests).toHaveLength(0);
  });

  describe("configuration", () => {
    const env = (extra: Record<string, string>) => ({
      APP_ENV: "test",
      LLM_SERVER_URLS: "https://10.0.0.5:8000,https://10.0.0.6:8000",
      ...extra,
    });

    it("reads the CA and the client certificate", () => {
      const config = loadConfig(
        env({
          LLM_SERVER_CA_FILE: ca.certFile,
          LLM_SERVER_CLIENT_CERT_FILE: client.certFile,
          LLM_SERVER_CLIENT_KEY_FILE: client.keyFile,
        }),
      );
      expect(config.llmServerUrls).toEqual(["https://10.0.0.5:8000", "https://10.0.0.6:8000"]);
      expect(config.upstreamTls.ca).toBe(ca.cert);
      expect(config.upstreamTls.cert).toBe(client.cert);
      expect(config.upstreamTls.key?.trim()).toBe(client.key.trim());
    });

    it("refuses a client key readable by others, naming the variable", () => {
      const key = join(dir, "shared.key");
      copyFileSync(client.keyFile, key);
      chmodSync(key, 0o644);
      const err = catchConfigError(() =>
        loadConfig(
          env({ LLM_SERVER_CLIENT_CERT_FILE: client.certFile, LLM_SERVER_CLIENT_KEY_FILE: key }),
        ),
      );
      expect(err.variable).toBe("LLM_SERVER_CLIENT_KEY_FILE");
      expect(err.message).toMatch(/readable by every user .*chmod 600/);
      expect(err.message).not.toContain("PRIVATE KEY");
    });

    it.each([
      [{ LLM_SERVER_CLIENT_CERT_FILE: "x.pem" }, "LLM_SERVER_CLIENT_KEY_FILE", /go together/],
      [{ LLM_SERVER_CLIENT_KEY_FILE: "x.key" }, "LLM_SERVER_CLIENT_CERT_FILE", /go together/],
      [
        { LLM_SERVER_CA_FILE: "/nonexistent/ca.pem" },
        "LLM_SERVER_CA_FILE",
        /cannot be read.*ENOENT/,
      ],
    ])("refuses %j (%s)", (extra, variable, message) => {
      const err = catchConfigError(() => loadConfig(env(extra)));
      expect(err.variable).toBe(variable);
      expect(err.message).toMatch(message);
    });

    it("refuses a CA file holding no certificate, and a key of another certificate", () => {
      let err = catchConfigError(() => loadConfig(env({ LLM_SERVER_CA_FILE: ca.keyFile })));
      expect(err.message).toMatch(/LLM_SERVER_CA_FILE holds no PEM certificate/);
      err = catchConfigError(() =>
        loadConfig(
          env({
            LLM_SERVER_CLIENT_CERT_FILE: good.certFile,
            LLM_SERVER_CLIENT_KEY_FILE: client.keyFile,
          }),
        ),
      );
      expect(err.message).toMatch(/not a usable certificate and key/);
    });

    it("refuses TLS settings when no llm-server URL is https", () => {
      const err = catchConfigError(() =>
        loadConfig({
          APP_ENV: "test",
          LLM_SERVER_URLS: "http://10.0.0.5:8000",
          LLM_SERVER_CA_FILE: ca.certFile,
        }),
      );
      expect(err.variable).toBe("LLM_SERVER_CA_FILE");
      expect(err.message).toMatch(/no LLM_SERVER_URLS entry is https/);
    });
  });
});
