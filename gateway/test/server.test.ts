import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import https from "node:https";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { selfSignedCert } from "./helpers.js";

const root = resolve(import.meta.dirname, "..");
const serverTs = join(root, "src", "server.ts");
// Absolute URL of tsx's ESM loader, so the child can run in any working directory.
const tsxLoader = pathToFileURL(join(root, "node_modules", "tsx", "dist", "loader.mjs")).href;

/** Runs src/server.ts in an empty temp dir (no .env) with exactly the given env. */
function startServer(env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, ["--import", tsxLoader, serverTs], {
    cwd: mkdtempSync(join(tmpdir(), "gateway-test-")),
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

function collect(child: ChildProcess): { stdout: () => string; stderr: () => string } {
  let out = "";
  let err = "";
  child.stdout?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    err += d.toString();
  });
  return { stdout: () => out, stderr: () => err };
}

function exitCode(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

/** Resolves with the URL of the first "gateway listening on …" line. */
function listenUrl(child: ChildProcess, output: ReturnType<typeof collect>): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listen line: ${output.stderr()}`)), 15_000);
    child.stdout?.on("data", () => {
      const match = /gateway listening on (https?:\/\/\S+)/.exec(output.stdout());
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
  });
}

describe("server entry point", () => {
  it("exits 1 with one stderr line naming AUTH_SECRET for a placeholder secret", async () => {
    const child = startServer({
      APP_ENV: "production",
      AUTH_SECRET: "changeme",
      LLM_SERVER_TOKEN: "llm-token-7f3a9c1e5b2d8f4a",
      GATEWAY_PORT: "0",
    });
    const output = collect(child);
    const code = await exitCode(child);
    expect(code).toBe(1);
    const lines = output
      .stderr()
      .split("\n")
      .filter((l) => l.trim() !== "");
    expect(lines).toEqual([
      "config error: set AUTH_SECRET (a random string of at least 32 characters)",
    ]);
  });

  it("starts in development, serves /health and stops cleanly on SIGTERM", async () => {
    const child = startServer({
      APP_ENV: "development",
      GATEWAY_HOST: "127.0.0.1",
      GATEWAY_PORT: "0",
      LOG_LEVEL: "warn",
    });
    const output = collect(child);
    const exited = exitCode(child);
    try {
      const url = await listenUrl(child, output);
      const res = await fetch(`${url}/health`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ status: "ok" });
    } finally {
      child.kill("SIGTERM");
    }
    expect(await exited).toBe(0);
  });

  it("serves HTTPS from TLS_CERT_FILE and TLS_KEY_FILE", async () => {
    const { certFile, keyFile } = selfSignedCert(mkdtempSync(join(tmpdir(), "gateway-tls-")));
    const child = startServer({
      APP_ENV: "development",
      GATEWAY_HOST: "127.0.0.1",
      GATEWAY_PORT: "0",
      LOG_LEVEL: "warn",
      TLS_CERT_FILE: certFile,
      TLS_KEY_FILE: keyFile,
    });
    const output = collect(child);
    const exited = exitCode(child);
    try {
      const url = await listenUrl(child, output);
      expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const status = await new Promise<number>((resolve, reject) => {
        https
          .get(`${url}/health`, { ca: readFileSync(certFile) }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          })
          .on("error", reject);
      });
      expect(status).toBe(200);
    } finally {
      child.kill("SIGTERM");
    }
    expect(await exited).toBe(0);
  });
});
