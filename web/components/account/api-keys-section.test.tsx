// @vitest-environment jsdom
import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { AccountUsageSection } from "./account-view";
import { ApiKeysSection } from "./api-keys-section";

let keys: {
  id: string;
  name: string;
  start: string;
  createdAt: string;
  expiresAt: null;
  lastUsedAt: null;
}[];
let fetchMock: ReturnType<typeof vi.fn>;

beforeEach(() => {
  keys = [];
  fetchMock = vi.fn(async (url: string, init?: RequestInit) => {
    if (url === "/api/user/api-keys" && init?.method === "POST") {
      const body = JSON.parse(String(init.body)) as { name: string; expiresInDays?: number };
      keys.push({
        id: "k1",
        name: body.name,
        start: "llm_abcdef",
        createdAt: "2026-01-01T00:00:00Z",
        expiresAt: null,
        lastUsedAt: null,
      });
      return Response.json(
        { id: "k1", name: body.name, key: "llm_abcdef_SECRET", expiresAt: null },
        { status: 201 },
      );
    }
    if (url === "/api/user/api-keys") return Response.json({ keys });
    if (url === "/api/user/api-keys/k1" && init?.method === "DELETE") {
      keys = [];
      return Response.json({ ok: true });
    }
    return Response.json(
      { error: { code: "NOT_FOUND", message: "Route not found" } },
      { status: 404 },
    );
  });
  vi.stubGlobal("fetch", fetchMock);
  vi.stubGlobal("confirm", () => true);
});
afterEach(() => vi.unstubAllGlobals());

describe("ApiKeysSection", () => {
  it("creates a key, shows it once with a copy button, lists and revokes it", async () => {
    render(<ApiKeysSection />);
    await screen.findByText("No API keys yet.");
    await userEvent.type(screen.getByLabelText("Key name"), "script");
    await userEvent.type(screen.getByLabelText(/Expires after/), "30");
    await userEvent.click(screen.getByRole("button", { name: "Create key" }));
    const post = fetchMock.mock.calls.find(
      ([, i]) => (i as RequestInit | undefined)?.method === "POST",
    );
    expect(JSON.parse(String((post?.[1] as RequestInit | undefined)?.body))).toEqual({
      name: "script",
      expiresInDays: 30,
    });
    expect(((await screen.findByLabelText("New API key")) as HTMLInputElement).value).toBe(
      "llm_abcdef_SECRET",
    );
    expect(screen.getByText(/will not be shown again/)).toBeTruthy();
    expect(screen.getByRole("button", { name: "Copy key" })).toBeTruthy();
    expect(await screen.findByRole("cell", { name: "script" })).toBeTruthy();

    await userEvent.click(screen.getByRole("button", { name: "Done" }));
    expect(screen.queryByText("llm_abcdef_SECRET")).toBeNull();
    expect(screen.queryByLabelText("New API key")).toBeNull();

    await userEvent.click(screen.getByRole("button", { name: "Revoke script" }));
    await screen.findByText("No API keys yet.");
  });
});

describe("AccountUsageSection", () => {
  it("shows the gateway's error when the usage route fails (a 404 is an error, not hidden)", async () => {
    fetchMock.mockImplementation(async () =>
      Response.json(
        { error: { code: "NOT_FOUND", message: "Route GET /api/user/usage not found" } },
        { status: 404 },
      ),
    );
    render(<AccountUsageSection />);
    expect((await screen.findByRole("alert")).textContent).toBe(
      "Route GET /api/user/usage not found",
    );
    expect(screen.queryByText("Loading…")).toBeNull();
  });
});
