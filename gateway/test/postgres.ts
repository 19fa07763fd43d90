/**
 * A real PostgreSQL for the tests, from Debian's packages: one server per `vitest run`,
 * started by the first test file that asks for it (so runs that need none pay nothing),
 * one fresh database per test app. `global-setup.ts` gives every worker the run's directory
 * and stops the server when the run ends.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  chownSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import pg from "pg";
import { inject } from "vitest";
import { type ClusterState, runPg } from "./pg-process.js";

declare module "vitest" {
  interface ProvidedContext {
    pgRunDir: string;
  }
}

/** Time for the first file to install (apt-get) and start the server. */
export const PG_SETUP_TIMEOUT = 300_000;

function findBinDir(): string | null {
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return null;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, "bin", "postgres")))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(root, versions[0], "bin") : null;
}

/** Debian's PostgreSQL binaries, installed with apt-get when missing. */
function binDirOrInstall(): string | { reason: string } {
  const found = findBinDir();
  if (found) return found;
  const apt = spawnSync("apt-get", ["install", "-y", "postgresql"], {
    stdio: "ignore",
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
  });
  const installed = findBinDir();
  if (installed) return installed;
  return {
    reason: `PostgreSQL is not installed and apt-get failed (${apt.error?.message ?? `exit ${apt.status}`})`,
  };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  await new Promise((r) => server.close(r));
  return port;
}

/** Starts a new PostgreSQL cluster in `runDir` (an empty directory the postgres user can reach). */
export async function startCluster(runDir: string): Promise<ClusterState> {
  const binDir = binDirOrInstall();
  if (typeof binDir !== "string") return binDir;
  let user: string | null = null;
  const base = join(runDir, "cluster");
  mkdirSync(base, { mode: 0o700 });
  if (process.getuid?.() === 0) {
    const ids = spawnSync("id", ["-u", "postgres"], { encoding: "utf8" });
    const gid = spawnSync("id", ["-g", "postgres"], { encoding: "utf8" });
    if (ids.status !== 0) return { reason: "running as root and there is no postgres user" };
    chownSync(base, Number(ids.stdout.trim()), Number(gid.stdout.trim()));
    user = "postgres";
  }
  const dataDir = join(base, "data");
  const state = { binDir, user };
  const init = runPg(state, [
    "initdb",
    "-D",
    dataDir,
    "-U",
    "postgres",
    "-A",
    "trust",
    "-E",
    "UTF8",
    "--locale=C",
    "--no-sync",
  ]);
  if (init.status !== 0) return { reason: `initdb failed: ${(init.stderr || "").trim()}` };
  const port = await freePort();
  // Durability is pointless for a throw-away cluster; turning it off makes CREATE DATABASE fast.
  const options = [
    `-p ${port}`,
    `-k ${base}`,
    "-c listen_addresses=127.0.0.1",
    "-c fsync=off",
    "-c synchronous_commit=off",
    "-c full_page_writes=off",
    "-c max_connections=300",
  ].join(" ");
  const log = join(base, "postgres.log");
  const start = runPg(state, ["pg_ctl", "-D", dataDir, "-o", options, "-l", log, "-w", "start"]);
  if (start.status !== 0) {
    const tail = existsSync(log) ? readFileSync(log, "utf8").slice(-500) : start.stderr;
    return { reason: `PostgreSQL did not start: ${tail.trim()}` };
  }
  return { url: `postgres://postgres@127.0.0.1:${port}`, dataDir, binDir, user, options };
}

/**
 * Stops (fast: sessions are cut, as in a crash or a restart) or starts again, on the same
 * port, a cluster from `startCluster`; throws when pg_ctl fails.
 */
export function pgCtl(state: ClusterState, action: "stop" | "start"): void {
  if ("reason" in state) throw new Error(state.reason);
  const args =
    action === "stop"
      ? ["pg_ctl", "-D", state.dataDir, "-m", "fast", "-w", "stop"]
      : [
          "pg_ctl",
          "-D",
          state.dataDir,
          "-o",
          state.options ?? "",
          "-l",
          join(dirname(state.dataDir), "postgres.log"),
          "-w",
          "start",
        ];
  const run = runPg(state, args);
  if (run.status !== 0) throw new Error(`pg_ctl ${action} failed: ${run.stderr}`);
}

/**
 * The run's PostgreSQL server: the first caller (an atomic mkdir decides) starts it and
 * writes `state.json`; the others wait for that file.
 */
async function cluster(): Promise<ClusterState> {
  const runDir = inject("pgRunDir");
  const stateFile = join(runDir, "state.json");
  let mine = false;
  try {
    mkdirSync(join(runDir, "lock"));
    mine = true;
  } catch {
    // another file is starting it
  }
  if (mine) {
    const state = await startCluster(runDir).catch(
      (err: unknown): ClusterState => ({ reason: String(err) }),
    );
    writeFileSync(`${stateFile}.tmp`, JSON.stringify(state));
    // rename is atomic: readers never see half a file.
    renameSync(`${stateFile}.tmp`, stateFile);
    return state;
  }
  const deadline = Date.now() + PG_SETUP_TIMEOUT;
  while (Date.now() < deadline) {
    if (existsSync(stateFile)) return JSON.parse(readFileSync(stateFile, "utf8")) as ClusterState;
    await new Promise((r) => setTimeout(r, 100));
  }
  return { reason: "timed out waiting for another test file to start PostgreSQL" };
}

let shared: Promise<ClusterState> | undefined;

/**
 * Starts (or joins) the run's PostgreSQL; `{reason}` when it cannot run here, printed loudly
 * once per file so a skipped PostgreSQL variant is never silent.
 */
export async function postgres(): Promise<ClusterState> {
  shared ??= cluster().then((state) => {
    if ("reason" in state) console.warn(`SKIPPING PostgreSQL tests: ${state.reason}`);
    return state;
  });
  return shared;
}

/** Creates a fresh, empty database on the run's server and returns its URL. */
export async function createPgDatabase(): Promise<string> {
  const state = await postgres();
  if ("reason" in state) throw new Error(`PostgreSQL unavailable: ${state.reason}`);
  const name = `gw_${randomBytes(6).toString("hex")}`;
  const client = new pg.Client({ connectionString: `${state.url}/postgres` });
  await client.connect();
  try {
    await client.query(`create database ${name}`);
  } finally {
    await client.end();
  }
  return `${state.url}/${name}`;
}
