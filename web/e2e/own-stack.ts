/**
 * A second stack (or the web app alone) started by one spec with settings of its own, beside
 * the suite's stack from global-setup: e.g. PUBLIC_URL at this machine's non-loopback address.
 */
import { type ChildProcess, spawn } from "node:child_process";
import os from "node:os";
import path from "node:path";
import { parseReadyLine, type StackUrls } from "./stack";

const WEB_DIR = path.resolve(__dirname, "..");
const STOP_GRACE_MS = 20_000;

/** A started child process and what it announced once ready. */
export interface Running<T> {
  ready: T;
  /** Everything it printed so far (both streams). */
  output: () => string;
  stop: () => Promise<void>;
}

/**
 * Starts `cmd args` in web/ and resolves once `readyWhen` recognises a line of its output;
 * rejects with the output when it exits first or `timeoutMs` passes.
 */
export function startProcess<T>(
  cmd: string,
  args: string[],
  env: Record<string, string>,
  readyWhen: (line: string) => T | undefined,
  timeoutMs: number,
): Promise<Running<T>> {
  const proc: ChildProcess = spawn(cmd, args, {
    cwd: WEB_DIR,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NEXT_TELEMETRY_DISABLED: "1", ...env },
  });
  let all = "";
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill("SIGTERM");
    const late = setTimeout(() => proc.kill("SIGKILL"), STOP_GRACE_MS);
    await exited;
    clearTimeout(late);
  };
  return new Promise((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      settled = true;
      void stop();
      reject(new Error(`${cmd} ${args.join(" ")}: not ready within ${timeoutMs} ms\n${all}`));
    }, timeoutMs);
    const onData = (chunk: Buffer) => {
      const text = chunk.toString("utf8");
      all += text;
      if (settled) return;
      const lines = all.split("\n");
      lines.pop(); // not yet a whole line
      for (const line of lines) {
        const ready = readyWhen(line);
        if (ready !== undefined) {
          settled = true;
          clearTimeout(timer);
          resolve({ ready, output: () => all, stop });
          return;
        }
      }
    };
    proc.stdout?.on("data", onData);
    proc.stderr?.on("data", onData);
    proc.once("exit", (code, signal) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new Error(`${cmd} exited (${code ?? signal}) before it was ready\n${all}`));
    });
  });
}

/**
 * The repo's supervisor with a throw-away stack: `stack.py serve --ephemeral …args`, with
 * `env` added to this process's environment (each service sees what the supervisor lets it).
 */
export function startOwnStack(
  args: string[],
  env: Record<string, string> = {},
): Promise<Running<StackUrls & { public?: string }>> {
  return startProcess(
    "python3",
    ["../scripts/stack.py", "serve", "--ephemeral", ...args],
    env,
    (line) => {
      const urls = parseReadyLine(line);
      if (!urls) return undefined;
      const extra = JSON.parse(line.slice("STACK_READY ".length)) as { public?: unknown };
      return typeof extra.public === "string" ? { ...urls, public: extra.public } : urls;
    },
    300_000,
  );
}

/**
 * The first non-loopback IPv4 address of this machine (e.g. 192.0.2.2 on eth0), or undefined.
 * Tests that need one skip without it, loudly, and fail under CI=true.
 */
export function nonLoopbackIPv4(): string | undefined {
  for (const addresses of Object.values(os.networkInterfaces())) {
    for (const address of addresses ?? []) {
      if (address.family === "IPv4" && !address.internal) return address.address;
    }
  }
  return undefined;
}

/** A free TCP port on every interface. */
export async function freePort(): Promise<number> {
  const net = await import("node:net");
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "0.0.0.0", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}
