import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { type ClusterState, runPg } from "./pg-process.js";

/**
 * Gives every test file this run's directory for the shared PostgreSQL (started lazily by
 * the first file that needs it, see postgres.ts) and stops and deletes it when the run ends.
 */
export default function setup(project: TestProject) {
  const runDir = mkdtempSync(join(tmpdir(), "gateway-pg-run-"));
  // The postgres user must reach the cluster directory inside it.
  chmodSync(runDir, 0o711);
  project.provide("pgRunDir", runDir);
  return () => {
    const stateFile = join(runDir, "state.json");
    if (existsSync(stateFile)) {
      const state = JSON.parse(readFileSync(stateFile, "utf8")) as ClusterState;
      if ("dataDir" in state)
        runPg(state, ["pg_ctl", "-D", state.dataDir, "-m", "immediate", "stop"]);
    }
    rmSync(runDir, { recursive: true, force: true });
  };
}
