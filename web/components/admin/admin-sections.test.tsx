// @vitest-environment jsdom
import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { UsageStats, UserUsage } from "@/lib/types";
import { UserUsageView } from "../account/usage-section";
import { ServersSection } from "./servers-section";
import { AdminUsageSection } from "./usage-section";

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

const today = new Date().toISOString().slice(0, 10);
let fetchMock: ReturnType<typeof vi.fn>;

beforeEach(() => {
  fetchMock = vi.fn(async (url: string) => {
    const u = new URL(url, "http://x");
    if (u.pathname === "/api/admin/usage") {
      const groupBy = u.searchParams.get("groupBy");
      const s = stats({ requests: 7, totalTokens: 1234, latencyP50Ms: 800, errorRate: 0.125 });
      const rows =
        groupBy === "day"
          ? [{ day: today, ...s }]
          : groupBy === "user"
            ? [{ userId: "u1", email: "a@example.org", ...s }]
            : [{ model: "gemma", ...s }];
      return Response.json({ from: u.searchParams.get("from"), to: "", groupBy, totals: s, rows });
    }
    if (u.pathname === "/api/admin/servers") {
      return Response.json({
        servers: [
          {
            url: "http://127.0.0.1:8000",
            state: "healthy",
            outstanding: 1,
            capacity: 32,
            running: 1,
            queued: 0,
            maxRunning: 16,
            consecutiveFailures: 0,
            requests: 9,
            failures: 0,
            lastCheckAt: new Date().toISOString(),
            lastError: null,
          },
        ],
        queue: { waiting: 0, max: 100, timeoutMs: 30000 },
      });
    }
    return Response.json({ error: { code: "NOT_FOUND", message: "nope" } }, { status: 404 });
  });
  vi.stubGlobal("fetch", fetchMock);
});
afterEach(() => vi.unstubAllGlobals());

describe("AdminUsageSection", () => {
  it("queries the range by day, user and model plus one query per day, and shows charts and tables", async () => {
    render(<AdminUsageSection />);
    const byUser = await screen.findByRole("table", { name: "Usage by user" });
    const row = within(byUser).getByRole("row", { name: /a@example\.org/ });
    expect(within(row).getAllByRole("cell")[0]?.textContent).toBe("7");
    expect(within(row).getAllByRole("cell")[3]?.textContent).toBe("1,234");
    expect(screen.getByRole("table", { name: "Usage by model" }).textContent).toContain("gemma");
    // 3 range queries + 14 per-day queries (default period: 14 days)
    expect(fetchMock).toHaveBeenCalledTimes(17);
    expect(
      screen.getByRole("img", {
        name: new RegExp(`^Tokens per day by user\\..*${today}: a@example\\.org 1,234`),
      }),
    ).toBeTruthy();
    expect(
      screen.getByRole("img", { name: /^Latency percentiles per day\..*p50 800 ms/ }),
    ).toBeTruthy();
    expect(
      screen.getByRole("img", { name: /^Cache-hit and error rates per day\..*errors 13%/ }),
    ).toBeTruthy();

    await userEvent.selectOptions(screen.getByLabelText("Tokens per day by"), "model");
    expect(
      await screen.findByRole("img", { name: /^Tokens per day by model\..*gemma 1,234/ }),
    ).toBeTruthy();
    const perDay = fetchMock.mock.calls
      .map(([u]) => String(u))
      .filter((u) => u.includes("groupBy=model"));
    expect(perDay.length).toBe(1 + 1 + 14);
  });
});

describe("ServersSection", () => {
  it("lists every llm-server with its state and load, and the queue", async () => {
    render(<ServersSection />);
    const row = await screen.findByRole("row", { name: /127\.0\.0\.1:8000/ });
    expect(within(row).getByText("healthy")).toBeTruthy();
    expect(within(row).getByText("1 / 32")).toBeTruthy();
    expect(screen.getByText("0 / 100")).toBeTruthy();
  });
});

describe("UserUsageView", () => {
  it("shows the quota meters against their limits and tokens per day", () => {
    const usage: UserUsage = {
      quota: {
        requestsPerMinute: {
          used: 3,
          limit: 60,
          remaining: 57,
          resetAt: "2025-05-01T10:31:00.000Z",
        },
        tokensPerDay: {
          used: 1234,
          limit: 200000,
          remaining: 198766,
          resetAt: "2025-05-02T00:00:00.000Z",
        },
        concurrentStreams: { used: 0, limit: null, remaining: null, resetAt: null },
        maxTokensPerRequest: 4096,
        models: [],
      },
      limits: {
        requestsPerMinute: 60,
        tokensPerDay: 200000,
        concurrentStreams: 0,
        maxTokens: 4096,
      },
      totals: stats({ requests: 12, totalTokens: 1234 }),
      days: [
        {
          day: "2025-05-01",
          requests: 12,
          promptTokens: 300,
          completionTokens: 934,
          cacheHits: 0,
          errors: 0,
        },
      ],
    };
    render(<UserUsageView usage={usage} />);
    const meters = within(screen.getByRole("list", { name: "Usage against quota" })).getAllByRole(
      "listitem",
    );
    expect(meters[0]?.textContent).toMatch(/^Tokens today1,234 \/ 200,000 · resets /);
    expect(meters[2]?.textContent).toBe("Concurrent streams0 (no limit)");
    expect(screen.getByText("Max tokens per request: 4,096.")).toBeTruthy();
    expect(
      screen.getByRole("img", {
        name: /^Tokens per day\. 2025-05-01: Prompt tokens 300, Completion tokens 934$/,
      }),
    ).toBeTruthy();
  });
});
