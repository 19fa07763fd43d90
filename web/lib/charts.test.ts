import { describe, expect, it } from "vitest";
import { daySeries, extractMeters } from "./charts";

describe("extractMeters", () => {
  it("finds used/limit pairs with reset times, and scalar facts", () => {
    const { meters, facts } = extractMeters({
      period: "2026-11-27",
      tokensPerDay: { used: 1200, limit: 100000, resetAt: "2026-11-28T00:00:00Z" },
      limits: { requestsPerMinute: { used: 3, limit: 60 }, concurrentStreams: { used: 0 } },
    });
    expect(meters).toEqual([
      { name: "tokensPerDay", used: 1200, limit: 100000, resetAt: "2026-11-28T00:00:00Z" },
      { name: "limits requestsPerMinute", used: 3, limit: 60, resetAt: null },
      { name: "limits concurrentStreams", used: 0, limit: null, resetAt: null },
    ]);
    expect(facts).toEqual([["period", "2026-11-27"]]);
  });
});

describe("daySeries", () => {
  it("sums numeric columns per day across users and models", () => {
    const s = daySeries({
      rows: [
        { day: "2026-11-26", user: "a", model: "m", totalTokens: 10, requests: 1 },
        { day: "2026-11-27", user: "a", model: "m", totalTokens: 5, requests: 1 },
        { day: "2026-11-26", user: "b", model: "m", totalTokens: 7, requests: 2 },
      ],
    });
    expect(s).toEqual({
      metrics: ["totalTokens", "requests"],
      days: ["2026-11-26", "2026-11-27"],
      values: {
        totalTokens: { "2026-11-26": 17, "2026-11-27": 5 },
        requests: { "2026-11-26": 3, "2026-11-27": 1 },
      },
    });
  });

  it("returns null when nothing is per day", () => {
    expect(daySeries({ servers: [{ url: "x", load: 1 }] })).toBeNull();
    expect(daySeries(null)).toBeNull();
  });
});
