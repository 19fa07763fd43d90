import { spawnSync } from "node:child_process";
import { join } from "node:path";

/** What the file that started the run's PostgreSQL wrote: where it is, or why there is none. */
export type ClusterState =
  | { url: string; dataDir: string; binDir: string; user: string | null; options?: string }
  | { reason: string };

/** Runs a PostgreSQL program; as the `postgres` user when we are root (initdb refuses root). */
export function runPg(state: { binDir: string; user: string | null }, args: string[]) {
  const [program, ...rest] = args;
  const bin = join(state.binDir, program ?? "");
  const cmd = state.user ? ["runuser", "-u", state.user, "--", bin, ...rest] : [bin, ...rest];
  return spawnSync(cmd[0] ?? "", cmd.slice(1), { encoding: "utf8", timeout: 120_000 });
}
