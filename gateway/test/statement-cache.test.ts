import SQLite from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { withStatementCache } from "../src/db/database.js";

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
