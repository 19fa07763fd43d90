import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { MemoryLimitStore, type SettleRequest } from "../src/services/limit-store.js";
import { LimitService } from "../src/services/limits.js";
import { buildTestApp, testConfig } from "./helpers.js";

/** The process store, refusing every settle while `down` (Redis unreachable). */
class FlakyStore extends MemoryLimitStore {
  down = true;
  override async settle(r: SettleRequest): Promise<void> {
    if (this.down) throw new Error("Connection is closed.");
    return super.settle(r);
  }
}

describe("LimitService.settle when the counters' store fails", () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await buildTestApp();
  });
  afterAll(async () => {
    vi.useRealTimers();
    await app.close();
  });

  it("never throws, reports the failure and gives the slot back once the store answers", async () => {
    const store = new FlakyStore();
    const reported: number[] = [];
    const defaults = testConfig().limits;
    const limits = new LimitService(
      app.db,
      store,
      { ...defaults, user: { ...defaults.user, concurrentStreams: 1, tokensPerDay: 1000 } },
      Date.now,
      0,
      (_err, waiting) => reported.push(waiting),
    );
    const caller = { userId: "u1", role: "user" as const, apiKeyId: null };
    const ask = { tokens: 100, minTokens: 10, concurrent: true };
    const admission = await limits.admit(caller, ask);
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    await expect(limits.settle(admission, 40)).resolves.toBeUndefined();
    expect(reported).toEqual([1]);
    expect(limits.unsettledCount).toBe(1);
    // Still down at the first retry: kept.
    await vi.advanceTimersByTimeAsync(5_000);
    expect(limits.unsettledCount).toBe(1);
    store.down = false;
    await vi.advanceTimersByTimeAsync(5_000);
    expect(limits.unsettledCount).toBe(0);
    vi.useRealTimers();
    const counters = await store.counters("user:u1", Date.now());
    expect(counters).toMatchObject({ concurrent: 0, tokensToday: 40 });
    // Settled once only: a second settle of the same admission changes nothing.
    await limits.settle(admission, 40);
    expect((await store.counters("user:u1", Date.now())).tokensToday).toBe(40);
    limits.close();
  });
});
