import { describe, expect, it } from "vitest";
import { ModelAccess } from "../src/services/model-access.js";
import type { ModelAccessStore } from "../src/services/model-access-store.js";

/** A store whose reads fail once `down` is set, as a database outage does. */
function flakyStore(state: { down: boolean }): ModelAccessStore {
  const rules = [{ id: "r1", model: "big", role: "user" as const, userId: null, value: false }];
  const read = <T>(value: T) =>
    state.down ? Promise.reject(new Error("connect ECONNREFUSED")) : Promise.resolve(value);
  return { rules: () => read(rules), limits: () => read([]) } as unknown as ModelAccessStore;
}

describe("model rules while the database is down", () => {
  const user = { userId: "u1", role: "user" as const };

  it("keep the last rules read (a deny still holds) instead of failing every call", async () => {
    const state = { down: false };
    let now = 0;
    const access = new ModelAccess(flakyStore(state), 1000, () => now);
    expect(await access.allowed(user, "big")).toBe(false);
    state.down = true;
    now = 5000; // past the cache's TTL: the read fails
    expect(await access.active()).toBe(true);
    expect(await access.allowed(user, "big")).toBe(false);
    expect(await access.allowed(user, "small")).toBe(true);
  });

  it("refuse when no rules were ever read", async () => {
    const access = new ModelAccess(flakyStore({ down: true }), 1000, () => 0);
    await expect(access.active()).rejects.toThrow("ECONNREFUSED");
  });
});
