import { describe, expect, it } from "vitest";
import {
  breakdownSeries,
  chartMax,
  dayStatSeries,
  fmtMs,
  fmtPct,
  lastUtcDays,
  quotaMeters,
  userTokenSeries,
} from "./charts";
import type { AdminUsageRow, UsageStats } from "./types";

const stats = (over: Partial<UsageStats> = {}): UsageStats => ({
  requests: 0,
  errors: 0,
  errorRate: 0,
  rejected: 0,
  cacheHits: 0,
  cacheHitRate: 0,
  promptTokens: 0,
  completionTokens: 0,
  totalTokens: 0,
  latencyP50Ms: null,
  latencyP95Ms: null,
  latencyP99Ms: null,
  ttftP50Ms: null,
  ttftP95Ms: null,
  ttftP99Ms: null,
  ...over,
});

describe("quotaMeters", () => {
  it("names the meters of /api/user/usage (one per model quota), null limit = no limit", () => {
    const m = quotaMeters({
      requestsPerMinute: { used: 3, limit: 60, remaining: 57, resetAt: "2025-05-01T10:31:00.000Z" },
      tokensPerDay: {
        used: 1234,
        limit: null,
        remaining: null,
        resetAt: "2025-05-02T00:00:00.000Z",
      },
      concurrentStreams: { used: 0, limit: 4, remaining: 4, resetAt: null },
      maxTokensPerRequest: 4096,
      models: [
        {
          model: "big",
          tokensPerDay: { used: 50, limit: 20000, remaining: 19950, resetAt: null },
        },
      ],
    });
    expect(m).toEqual([
      { name: "Tokens today", used: 1234, limit: null, resetAt: "2025-05-02T00:00:00.000Z" },
      { name: "big: tokens today", used: 50, limit: 20000, resetAt: null },
      { name: "Requests this minute", used: 3, limit: 60, resetAt: "2025-05-01T10:31:00.000Z" },
      { name: "Concurrent streams", used: 0, limit: 4, resetAt: null },
    ]);
  });
});

describe("userTokenSeries", () => {
  it("stacks prompt and completion tokens per day", () => {
    const d = userTokenSeries([
      {
        day: "2025-05-01",
        requests: 2,
        promptTokens: 10,
        completionTokens: 30,
        cacheHits: 0,
        errors: 0,
      },
      {
        day: "2025-05-02",
        requests: 0,
        promptTokens: 0,
        completionTokens: 0,
        cacheHits: 0,
        errors: 0,
      },
    ]);
    expect(d).toEqual({
      days: ["2025-05-01", "2025-05-02"],
      series: [
        { name: "Prompt tokens", values: [10, 0] },
        { name: "Completion tokens", values: [30, 0] },
      ],
    });
    expect(chartMax(d, true)).toBe(40);
    expect(chartMax(d, false)).toBe(30);
  });
});

describe("lastUtcDays", () => {
  it("gives [from, to) of each UTC day ending today, oldest first", () => {
    const now = Date.parse("2025-05-03T15:00:00Z");
    expect(lastUtcDays(3, now)).toEqual([
      { day: "2025-05-01", from: "2025-05-01T00:00:00.000Z", to: "2025-05-02T00:00:00.000Z" },
      { day: "2025-05-02", from: "2025-05-02T00:00:00.000Z", to: "2025-05-03T00:00:00.000Z" },
      { day: "2025-05-03", from: "2025-05-03T00:00:00.000Z", to: "2025-05-04T00:00:00.000Z" },
    ]);
  });
});

describe("dayStatSeries", () => {
  it("aligns groupBy=day rows with the days, null where missing or null", () => {
    const rows: AdminUsageRow[] = [
      { day: "2025-05-02", ...stats({ latencyP50Ms: 100, latencyP95Ms: 300, cacheHitRate: 0.25 }) },
    ];
    const d = dayStatSeries(["2025-05-01", "2025-05-02"], rows, [
      { key: "latencyP50Ms", name: "p50" },
      { key: "latencyP99Ms", name: "p99" },
      { key: "cacheHitRate", name: "cache hits" },
    ]);
    expect(d.series).toEqual([
      { name: "p50", values: [null, 100] },
      { name: "p99", values: [null, null] },
      { name: "cache hits", values: [null, 0.25] },
    ]);
  });
});

describe("breakdownSeries", () => {
  it("one series per user per day, biggest first, the rest as Others", () => {
    const u = (email: string, totalTokens: number): AdminUsageRow => ({
      userId: email,
      email,
      ...stats({ totalTokens }),
    });
    const d = breakdownSeries(
      [
        { day: "d1", rows: [u("a", 10), u("b", 5), u("c", 1)] },
        { day: "d2", rows: [u("b", 20), u("d", 2)] },
      ],
      "totalTokens",
      3,
    );
    expect(d).toEqual({
      days: ["d1", "d2"],
      series: [
        { name: "b", values: [5, 20] },
        { name: "a", values: [10, 0] },
        { name: "Others", values: [1, 2] },
      ],
    });
  });

  it("names model rows by model", () => {
    const d = breakdownSeries([
      { day: "d1", rows: [{ model: "gemma", ...stats({ totalTokens: 7 }) }] },
    ]);
    expect(d.series).toEqual([{ name: "gemma", values: [7] }]);
  });
});

describe("formatters", () => {
  it("formats rates and durations", () => {
    expect(fmtPct(0.025)).toBe("2.5%");
    expect(fmtPct(0.5)).toBe("50%");
    expect(fmtPct(0)).toBe("0%");
    expect(fmtMs(820)).toBe("820 ms");
    expect(fmtMs(12_345)).toBe("12.3 s");
    expect(fmtMs(null)).toBe("—");
  });
});
