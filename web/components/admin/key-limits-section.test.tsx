// @vitest-environment jsdom
import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { KeyLimitsSection } from "./key-limits-section";

let fetchMock: ReturnType<typeof vi.fn>;
let saved: unknown;

beforeEach(() => {
  saved = undefined;
  fetchMock = vi.fn(async (url: string, init?: RequestInit) => {
    const path = new URL(url, "http://x").pathname;
    if (path === "/api/admin/users") {
      return Response.json({
        users: [
          {
            id: "u1",
            email: "a@example.org",
            name: "A",
            role: "user",
            disabled: false,
            createdAt: "2025-01-01T00:00:00.000Z",
          },
        ],
      });
    }
    if (path === "/api/admin/users/u1/api-keys") {
      return Response.json({
        keys: [
          {
            id: "k1",
            name: "ci",
            start: "llm_ab",
            createdAt: "2025-01-01T00:00:00.000Z",
            expiresAt: null,
            lastUsedAt: null,
            limits: {
              requestsPerMinute: 5,
              tokensPerDay: null,
              concurrentStreams: null,
              maxTokens: null,
            },
          },
        ],
      });
    }
    if (path === "/api/admin/api-keys/k1/limits" && init?.method === "PUT") {
      saved = JSON.parse(String(init.body));
      return Response.json({ apiKeyId: "k1", userId: "u1", overrides: saved });
    }
    return Response.json({ error: { code: "NOT_FOUND", message: "nope" } }, { status: 404 });
  });
  vi.stubGlobal("fetch", fetchMock);
});
afterEach(() => vi.unstubAllGlobals());

describe("KeyLimitsSection", () => {
  it("lists a user's keys with their own limits and saves them with PUT (blank = none)", async () => {
    const user = userEvent.setup();
    render(<KeyLimitsSection />);
    await screen.findByRole("option", { name: "a@example.org" });
    await user.selectOptions(screen.getByLabelText("Owner"), "u1");
    const rpm = await screen.findByLabelText("Requests per minute for key ci");
    expect((rpm as HTMLInputElement).value).toBe("5");
    await user.clear(rpm);
    await user.type(screen.getByLabelText("Tokens per day for key ci"), "1000");
    await user.type(screen.getByLabelText("Max tokens per request for key ci"), "0");
    await user.click(screen.getByRole("button", { name: "Save limits of key ci" }));
    expect(await screen.findByText("Saved the limits of key ci.")).toBeTruthy();
    expect(saved).toEqual({
      requestsPerMinute: null,
      tokensPerDay: 1000,
      concurrentStreams: null,
      maxTokens: 0,
    });
  });

  it("shows the gateway's error when saving fails", async () => {
    const user = userEvent.setup();
    render(<KeyLimitsSection />);
    await user.selectOptions(await screen.findByLabelText("Owner"), "u1");
    await screen.findByLabelText("Requests per minute for key ci");
    fetchMock.mockImplementationOnce(async () =>
      Response.json(
        { error: { code: "VALIDATION_ERROR", message: "body/requestsPerMinute must be >= 0" } },
        { status: 400 },
      ),
    );
    await user.click(screen.getByRole("button", { name: "Save limits of key ci" }));
    expect((await screen.findByRole("alert")).textContent).toContain("must be >= 0");
  });
});
