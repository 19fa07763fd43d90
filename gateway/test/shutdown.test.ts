import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import SQLite from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { FAKE_TOKEN, startFakeLlm } from "./fake-llm.js";
import { bearer, chat, JSON_CT, ORIGIN } from "./helpers.js";
import { type Cleanup, dataEvents, runCleanup } from "./two-servers.js";

const root = resolve(import.meta.dirname, "..");
const serverTs = join(root, "src", "server.ts");
const tsxLoader = pathToFileURL(join(root, "node_modules", "tsx", "dist", "loader.mjs")).href;

/** Reads a response until the text contains `marker` (or the stream ends). */
async function readUntil(reader: ReadableStreamDefaultReader<Uint8Array>, marker: string) {
  const decoder = new TextDecoder();
  let text = "";
  while (!text.includes(marker)) {
    const r = await reader.read();
    if (r.done) break;
    text += decoder.decode(r.value);
  }
  return text;
}

/**
 * SIGTERM to the real gateway process with a stream open: it stops taking requests, lets
 * the stream run until SHUTDOWN_DRAIN_MS, then ends it with an in-band error, writes its
 * usage row and exits 0 — well before a supervisor's 20 s kill.
 */
describe("gateway shutdown with streams open", () => {
  const cleanup: Cleanup = [];
  afterEach(() => runCleanup(cleanup));

  it("ends a stream still open at the drain deadline in-band, records its usage, exits", async () => {
    const fake = await startFakeLlm();
    cleanup.push(() => fake.close());
    const dir = mkdtempSync(join(tmpdir(), "gateway-shutdown-"));
    const dbPath = join(dir, "gateway.sqlite");
    const child: ChildProcess = spawn(process.execPath, ["--import", tsxLoader, serverTs], {
      cwd: dir,
      env: {
        PATH: process.env.PATH ?? "",
        APP_ENV: "development",
        GATEWAY_HOST: "127.0.0.1",
        GATEWAY_PORT: "0",
        LOG_LEVEL: "warn",
        DATABASE_PATH: dbPath,
        LLM_SERVER_URLS: fake.url,
        LLM_SERVER_TOKEN: FAKE_TOKEN,
        SHUTDOWN_DRAIN_MS: "1500",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)));
    cleanup.push(async () => {
      if (child.exitCode === null) child.kill("SIGKILL");
    });
    const base = await new Promise<string>((done, fail) => {
      let out = "";
      const timer = setTimeout(() => fail(new Error(`no listen line: ${stderr}`)), 90_000);
      child.stdout?.on("data", (d: Buffer) => {
        out += d.toString();
        const match = /gateway listening on (http:\/\/\S+)/.exec(out);
        if (match?.[1]) {
          clearTimeout(timer);
          done(match[1]);
        }
      });
    });

    const signUp = await fetch(`${base}/api/auth/sign-up/email`, {
      method: "POST",
      headers: { ...JSON_CT, origin: ORIGIN },
      body: JSON.stringify({
        email: "drain@example.org",
        password: "correct-horse-battery",
        name: "D",
      }),
    });
    expect(signUp.status).toBe(200);
    const token = signUp.headers.get("set-auth-token") ?? "";
    const open = (content: string) =>
      fetch(`${base}/v1/chat/completions`, {
        method: "POST",
        headers: { ...bearer(token), ...JSON_CT },
        body: JSON.stringify(chat(content, { stream: true })),
      });
    const res = await open("SLOW");
    expect(res.status).toBe(200);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    expect(await readUntil(reader, "Hel")).toContain("Hel");

    const t0 = Date.now();
    child.kill("SIGTERM");
    const rest = await readUntil(reader, "shutting_down");
    const waited = Date.now() - t0;
    const events = dataEvents(rest);
    expect(events).not.toContain("[DONE]");
    expect(JSON.parse(events.at(-1) ?? "{}").error).toMatchObject({
      code: "shutting_down",
      type: "server_error",
      message: "The gateway is shutting down; retry shortly",
    });
    // The stream had its drain time, not less, and not the whole 20 s either.
    expect(waited).toBeGreaterThanOrEqual(1400);
    expect(await exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(15_000);

    const db = new SQLite(dbPath, { readonly: true });
    try {
      const rows = db
        .prepare(
          "select status, outcome, errorCode, promptTokens, completionTokens from usage_record",
        )
        .all();
      expect(rows).toEqual([
        {
          status: 503,
          outcome: "error",
          errorCode: "SHUTTING_DOWN",
          promptTokens: 5,
          completionTokens: 1,
        },
      ]);
    } finally {
      db.close();
    }
  }, 120_000);
});
