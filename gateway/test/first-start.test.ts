import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { setupDatabase } from "../src/auth/setup.js";
import { DATABASES, databaseConfig, postgresMissing, testConfig } from "./helpers.js";

const skipPg = await postgresMissing();

/** A log that keeps every call, by level. */
function recordingLog() {
  const lines: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
  const at =
    (level: string) =>
    (obj: Record<string, unknown>, msg: string): void => {
      lines.push({ level, obj, msg });
    };
  return {
    lines,
    log: { error: at("error"), warn: at("warn"), info: at("info"), debug: at("debug") },
  };
}

/** Lets better-auth's asynchronous start-up work (its schema check) report, if it would. */
async function settle(auth: { $context: Promise<unknown> }): Promise<void> {
  await auth.$context;
  await new Promise((resolve) => setTimeout(resolve, 200));
}

describe.each(DATABASES)("a first start on an empty %s database", (kind) => {
  it.skipIf(kind === "postgres" && skipPg)(
    "migrates at info level and logs nothing at error or warn level; a second start migrates nothing",
    async () => {
      const path = join(mkdtempSync(join(tmpdir(), "gateway-first-")), "gateway.sqlite");
      const config = testConfig({ ...(await databaseConfig(kind, path)), logLevel: "info" });
      const first = recordingLog();
      const opened = await setupDatabase(config, first.log);
      await settle(opened.auth);
      await opened.db.close();
      expect(first.lines.filter((l) => l.level === "error" || l.level === "warn")).toEqual([]);
      const migrated = first.lines.filter((l) => l.msg === "database migrated");
      expect(migrated).toHaveLength(1);
      expect(migrated[0]?.level).toBe("info");
      expect(migrated[0]?.obj.created).toEqual(expect.arrayContaining(["user", "session"]));
      expect(migrated[0]?.obj.gatewayMigrations).toEqual(
        expect.arrayContaining([expect.any(String)]),
      );

      const second = recordingLog();
      const again = await setupDatabase(config, second.log);
      await settle(again.auth);
      await again.db.close();
      expect(second.lines.filter((l) => l.level !== "debug")).toEqual([]);
    },
  );
});
