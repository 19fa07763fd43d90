import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import SQLite from "better-sqlite3";
import { sql } from "kysely";
import { describe, expect, it } from "vitest";
import { openDatabase, withStatementCache } from "../src/db/database.js";

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
  it("opens a file database in WAL mode without an fsync at every commit (synchronous NORMAL)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "gw-sqlite-"));
    const db = openDatabase({ path: join(dir, "gateway.sqlite") });
    try {
      const { rows: mode } = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(
        db.kysely,
      );
      const { rows: sync } = await sql<{ synchronous: number }>`pragma synchronous`.execute(
        db.kysely,
      );
      expect(mode).toEqual([{ journal_mode: "wal" }]);
      expect(sync).toEqual([{ synchronous: 1 }]); // 1 = NORMAL (2 = FULL, SQLite's default)
    } finally {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
