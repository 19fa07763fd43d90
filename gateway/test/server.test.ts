import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";

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
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no listen line: ${output.stderr()}`)),
          15_000,
        );
        child.stdout?.on("data", () => {
          const match = /gateway listening on (http:\/\/\S+)/.exec(output.stdout());
          if (match?.[1]) {
            clearTimeout(timer);
            resolve(match[1]);
          }
        });
      });
      const res = await fetch(`${url}/health`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ status: "ok" });
    } finally {
      child.kill("SIGTERM");
    }
    expect(await exited).toBe(0);
  });
});
