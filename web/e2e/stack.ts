/**
 * Starts/stops the whole real stack for e2e through the repo's Python
 * supervisor (`python3 ../scripts/stack.py serve --ephemeral`), which prints
 * one `STACK_READY {...json...}` line on stdout once every service is healthy
 * and stops everything on SIGTERM.
 *
 * The child is kept in module state: Playwright runs globalSetup and
 * globalTeardown in the same runner process.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, rmSync, type WriteStream } from "node:fs";
import os from "node:os";
import path from "node:path";

export interface StackUrls {
  web: string;
  gateway: string;
  llm: string;
  /** The stack's data directory (its SQLite database), for gateway/bin/admin. */
  data?: string;
}

const READY_PREFIX = "STACK_READY ";
const START_TIMEOUT_MS = 300_000;
const STOP_GRACE_MS = 20_000;
const TAIL_LINES = 60;

let child: ChildProcess | undefined;
let log: WriteStream | undefined;

/**
 * The supervisor's stderr (every service's log) is also written to this file, so
 * tests can read what the services logged (e.g. the first-admin setup link the
 * gateway prints at start). globalSetup exports it as E2E_STACK_LOG.
 */
export const stackLogPath = path.join(os.tmpdir(), `llm-stack-e2e-${process.pid}.log`);

/** Command to run; E2E_STACK_COMMAND (JSON array) overrides it for testing. */
function stackCommand(): string[] {
  const override = process.env.E2E_STACK_COMMAND;
  if (override) {
    const parsed: unknown = JSON.parse(override);
    if (
      !Array.isArray(parsed) ||
      parsed.length === 0 ||
      !parsed.every((x) => typeof x === "string")
    ) {
      throw new Error("E2E_STACK_COMMAND must be a JSON array of strings");
    }
    return parsed as string[];
  }
  return ["python3", "../scripts/stack.py", "serve", "--ephemeral"];
}

export function parseReadyLine(line: string): StackUrls | undefined {
  if (!line.startsWith(READY_PREFIX)) return undefined;
  const data: unknown = JSON.parse(line.slice(READY_PREFIX.length));
  if (typeof data !== "object" || data === null) throw new Error(`bad STACK_READY line: ${line}`);
  const { web, gateway, llm, data: dir } = data as Record<string, unknown>;
  if (typeof web !== "string" || typeof gateway !== "string" || typeof llm !== "string") {
    throw new Error(`STACK_READY line lacks web/gateway/llm URLs: ${line}`);
  }
  return { web, gateway, llm, ...(typeof dir === "string" ? { data: dir } : {}) };
}

export function startStack(): Promise<StackUrls> {
  const [cmd, ...args] = stackCommand();
  if (!cmd) throw new Error("empty stack command");
  const cwd = path.resolve(__dirname, "..");
  const tail: string[] = [];
  const remember = (line: string) => {
    tail.push(line);
    if (tail.length > TAIL_LINES) tail.shift();
  };

  console.log(`[e2e] starting stack: ${[cmd, ...args].join(" ")} (cwd ${cwd})`);
  const proc = spawn(cmd, args, {
    cwd,
    detached: false,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NEXT_TELEMETRY_DISABLED: "1" },
  });
  child = proc;

  return new Promise<StackUrls>((resolve, reject) => {
    let settled = false;
    let stdoutBuf = "";
    let stderrBuf = "";

    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const out = tail.length ? `\n--- last output ---\n${tail.join("\n")}` : " (no output)";
      reject(new Error(`[e2e] stack did not become ready: ${why}${out}`));
    };

    const timer = setTimeout(() => {
      fail(`no STACK_READY line within ${START_TIMEOUT_MS / 1000} s`);
      void stopStack();
    }, START_TIMEOUT_MS);

    proc.stdout?.setEncoding("utf8");
    proc.stdout?.on("data", (chunk: string) => {
      stdoutBuf += chunk;
      let nl = stdoutBuf.indexOf("\n");
      while (nl >= 0) {
        const line = stdoutBuf.slice(0, nl).replace(/\r$/, "");
        stdoutBuf = stdoutBuf.slice(nl + 1);
        nl = stdoutBuf.indexOf("\n");
        remember(`[stdout] ${line}`);
        if (settled) continue;
        try {
          const urls = parseReadyLine(line);
          if (urls) {
            settled = true;
            clearTimeout(timer);
            resolve(urls);
          }
        } catch (err) {
          fail(err instanceof Error ? err.message : String(err));
          void stopStack();
        }
      }
    });

    proc.stderr?.setEncoding("utf8");
    log = createWriteStream(stackLogPath, { flags: "w" });
    proc.stderr?.on("data", (chunk: string) => {
      process.stderr.write(chunk);
      log?.write(chunk);
      stderrBuf += chunk;
      const lines = stderrBuf.split("\n");
      stderrBuf = lines.pop() ?? "";
      for (const line of lines) remember(`[stderr] ${line}`);
    });

    proc.on("error", (err) => fail(`could not spawn ${cmd}: ${err.message}`));
    proc.on("exit", (code, signal) => {
      if (child === proc) child = undefined;
      fail(`stack exited early (code ${code}, signal ${signal})`);
    });
  });
}

export async function stopStack(): Promise<void> {
  const proc = child;
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) {
    child = undefined;
    closeLog();
    return;
  }
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  console.log(`[e2e] stopping stack (pid ${proc.pid}) with SIGTERM`);
  proc.kill("SIGTERM");
  const timedOut = await Promise.race([
    exited.then(() => false),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(true), STOP_GRACE_MS).unref()),
  ]);
  if (timedOut) {
    console.warn(`[e2e] stack did not exit within ${STOP_GRACE_MS / 1000} s; sending SIGKILL`);
    proc.kill("SIGKILL");
    await exited;
  }
  child = undefined;
  closeLog();
}

function closeLog(): void {
  log?.end();
  log = undefined;
  rmSync(stackLogPath, { force: true });
}
