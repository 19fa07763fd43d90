import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import SQLite from "better-sqlite3";
import { type Kysely, sql } from "kysely";
import { describe, expect, it } from "vitest";
import { openDatabase, withStatementCache } from "../src/db/database.js";
import type { AppTables } from "../src/db/schema.js";

describe("SQLite statement cache", () => {
  it("prepares a query once, never hands out a statement that is still iterating, is bounded", () => {
    const raw = new SQLite(":memory:");
    const db = withStatementCache(raw, 2);
    db.prepare("create table t (n integer)").run([]);
    const insert = db.prepare("insert into t (n) values (?)");
    for (const n of [1, 2, 3]) db.prepare("insert into t (n) values (?)").run([n]);
    expect(db.prepare("insert into t (n) values (?)")).toBe(insert);

    const select = "select n from t order by n";
    const it = db.prepare(select).iterate([]);
    expect(it.next().value).toEqual({ n: 1 });
    // The cached statement is busy: a second use gets its own, and both read correctly.
    expect(db.prepare(select).all([])).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
    expect([...it]).toEqual([{ n: 2 }, { n: 3 }]);

    db.prepare("select 1 as one").all([]);
    db.prepare("select 2 as two").all([]);
    expect(db.prepare("insert into t (n) values (?)")).not.toBe(insert);
    db.close();
  });
});

describe("SQLite connection settings", () => {
  const pragma = async (db: Kysely<AppTables>) =>
    (await sql<{ synchronous: number }>`pragma synchronous`.execute(db)).rows[0]?.synchronous;

  it("syncs every commit (FULL) but usage batches (bulk: NORMAL, for that write only), in WAL mode", async () => {
    const dir = mkdtempSync(join(tmpdir(), "gw-sqlite-"));
    const db = openDatabase({ path: join(dir, "gateway.sqlite") });
    try {
      const { rows: mode } = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(
        db.kysely,
      );
      expect(mode).toEqual([{ journal_mode: "wal" }]);
      // 2 = FULL: an account, a session or a revocation survives a power cut.
      expect(await pragma(db.kysely)).toBe(2);
      // 1 = NORMAL inside a bulk write only, FULL again after it, even when it fails.
      expect(await db.bulk((conn) => pragma(conn))).toBe(1);
      expect(await pragma(db.kysely)).toBe(2);
      await expect(
        db.bulk(async () => {
          throw new Error("refused");
        }),
      ).rejects.toThrow("refused");
      expect(await pragma(db.kysely)).toBe(2);
      // A write that starts while a bulk write runs is synced: it waits for the connection.
      const during: Promise<number | undefined>[] = [];
      await db.bulk(async (conn) => {
        during.push(pragma(db.kysely));
        await new Promise((resolve) => setTimeout(resolve, 20));
        return pragma(conn);
      });
      expect(await Promise.all(during)).toEqual([2]);
    } finally {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
