// @vitest-environment jsdom
import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";

const social = vi.fn();
vi.mock("@/lib/auth-client", () => ({
  authClient: { signIn: { social: (...a: unknown[]) => social(...a) }, $fetch: vi.fn() },
}));

import { OAuthButtons } from "./oauth-buttons";

afterEach(() => vi.unstubAllGlobals());

describe("OAuthButtons", () => {
  it("shows one button per configured provider and starts its sign-in", async () => {
    vi.stubGlobal(
      "fetch",
      vi.fn(async () =>
        Response.json({
          providers: [
            { id: "github", name: "GitHub" },
            { id: "corp", name: "Corp SSO" },
          ],
        }),
      ),
    );
    social.mockResolvedValue({ data: { url: "https://idp.example/authorize" }, error: null });
    render(<OAuthButtons next="/chat/7" />);
    await userEvent.click(await screen.findByRole("button", { name: "Continue with GitHub" }));
    expect(screen.getByRole("button", { name: "Continue with Corp SSO" })).toBeTruthy();
    expect(social).toHaveBeenCalledWith({
      provider: "github",
      callbackURL: `${window.location.origin}/chat/7`,
    });
  });

  it("renders nothing when the gateway offers no provider (or the route is missing)", async () => {
    const fetchMock = vi.fn(async () =>
      Response.json({ error: { code: "NOT_FOUND", message: "x" } }, { status: 404 }),
    );
    vi.stubGlobal("fetch", fetchMock);
    const { container } = render(<OAuthButtons next="/chat" />);
    await vi.waitFor(() => expect(fetchMock).toHaveBeenCalled());
    expect(container.innerHTML).toBe("");
  });
});
