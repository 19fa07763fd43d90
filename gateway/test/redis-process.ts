import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";

/** Debian's redis-server, installed with apt-get when missing; null (with the reason) if impossible. */
export function redisBinary(): { path: string } | { reason: string } {
  const path = "/usr/bin/redis-server";
  if (existsSync(path)) return { path };
  const apt = spawnSync("apt-get", ["install", "-y", "redis-server"], { stdio: "ignore" });
  if (apt.status === 0 && existsSync(path)) return { path };
  return {
    reason: `redis-server is not installed and apt-get failed (${apt.error?.message ?? `exit ${apt.status}`})`,
  };
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  await new Promise((r) => server.close(r));
  return port;
}

/** A real redis-server on a free loopback port, in a temporary directory, without persistence. */
export interface RedisProcess {
  url: string;
  /** A temporary directory of its own (tests may put their SQLite file there too). */
  dir: string;
  proc: ChildProcess;
  /** Sends `signal` and waits for the exit (no-op when it already exited). */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts redis-server (the binary from redisBinary) and waits until it answers PING. */
export async function startRedis(binary: string): Promise<RedisProcess> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "gateway-redis-"));
  const proc = spawn(
    binary,
    [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--dir",
      dir,
      "--save",
      "",
      "--appendonly",
      "no",
    ],
    { stdio: "ignore" },
  );
  const url = `redis://127.0.0.1:${port}`;
  const probe = new Redis(url, { lazyConnect: true, retryStrategy: () => 50 });
  probe.on("error", () => undefined); // refused until redis-server listens
  let up = false;
  for (let i = 0; i < 100 && !up; i++) {
    try {
      await probe.connect().catch(() => undefined);
      up = (await probe.ping()) === "PONG";
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  probe.disconnect();
  if (!up) throw new Error(`redis-server did not answer on ${url}`);
  return {
    url,
    dir,
    proc,
    async stop(signal = "SIGTERM") {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once("exit", r));
      proc.kill(signal);
      await exited;
    },
  };
}
