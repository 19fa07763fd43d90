// @vitest-environment jsdom
import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Invitation } from "@/lib/types";
import { SessionProvider } from "../shell/session";
import { InvitationsSection } from "./invitations-section";

let invitations: Invitation[] = [];
let mode = "open";
let fetchMock: ReturnType<typeof vi.fn>;

beforeEach(() => {
  invitations = [];
  mode = "open";
  fetchMock = vi.fn(async (url: string, init?: RequestInit) => {
    const path = new URL(url, "http://x").pathname;
    const body = init?.body ? JSON.parse(String(init.body)) : undefined;
    if (path === "/api/admin/settings" && init?.method === "PATCH") {
      mode = body.signupMode;
      return Response.json({ signupMode: mode });
    }
    if (path === "/api/admin/settings") {
      return Response.json({
        signupMode: mode,
        signupModeDefault: "open",
        mail: {
          configured: true,
          sent: 0,
          failed: 1,
          lastFailure: { at: new Date().toISOString(), kind: "invitation", error: "ECONNREFUSED" },
        },
      });
    }
    if (path === "/api/admin/invitations" && init?.method === "POST") {
      const invitation: Invitation = {
        id: "i1",
        email: body.email,
        role: body.role,
        status: "pending",
        createdAt: new Date().toISOString(),
        expiresAt: new Date(Date.now() + 86_400_000).toISOString(),
        usedAt: null,
        revokedAt: null,
      };
      invitations = [invitation];
      return Response.json(
        {
          invitation,
          link: "http://h/invite?token=abc",
          mail: { sent: false, reason: "failed", error: "ECONNREFUSED" },
        },
        { status: 201 },
      );
    }
    if (path === "/api/admin/invitations") return Response.json({ invitations });
    if (path === "/api/admin/invitations/i1") {
      invitations = invitations.map((i) => ({ ...i, status: "revoked" as const }));
      return Response.json(invitations[0]);
    }
    if (path === "/api/user") {
      return Response.json({
        id: "u",
        email: "wait@example.com",
        name: "W",
        role: "user",
        twoFactorEnabled: false,
        pending: true,
        createdAt: new Date().toISOString(),
      });
    }
    return new Response("{}", { status: 404 });
  });
  vi.stubGlobal("fetch", fetchMock);
});

afterEach(() => {
  vi.unstubAllGlobals();
});

describe("InvitationsSection", () => {
  it("sets the sign-up mode, invites, shows the link when the mail failed, revokes", async () => {
    const user = userEvent.setup();
    render(<InvitationsSection />);
    const select = await screen.findByLabelText("Who can create an account");
    await user.selectOptions(select, "invite");
    expect((await screen.findByRole("status")).textContent).toContain("Sign-up is now: invite.");
    expect(screen.getByTestId("mail-status").textContent).toContain("ECONNREFUSED");

    await user.type(screen.getByLabelText("Email to invite"), "new@example.com");
    await user.selectOptions(screen.getByLabelText("Role"), "admin");
    await user.click(screen.getByRole("button", { name: "Invite" }));
    const link = await screen.findByLabelText("Invitation link for new@example.com");
    expect((link as HTMLInputElement).value).toBe("http://h/invite?token=abc");
    expect(screen.getByRole("status").textContent).toContain("The mail to new@example.com failed");
    const row = (await screen.findByRole("cell", { name: "new@example.com" })).closest("tr");
    expect(within(row as HTMLElement).getByText("admin")).toBeTruthy();
    await user.click(
      screen.getByRole("button", { name: "Revoke the invitation for new@example.com" }),
    );
    expect(await screen.findByText("revoked")).toBeTruthy();
  });
});

describe("a pending account", () => {
  it("sees the waiting page instead of the app, and loads no conversations", async () => {
    render(
      <SessionProvider fallback={<p>loading</p>}>
        <p>the app</p>
      </SessionProvider>,
    );
    expect(await screen.findByRole("heading", { name: "Waiting for approval" })).toBeTruthy();
    expect(screen.queryByText("the app")).toBeNull();
    expect(screen.getByText("wait@example.com")).toBeTruthy();
    const paths = fetchMock.mock.calls.map((c) => new URL(String(c[0]), "http://x").pathname);
    expect(paths).not.toContain("/api/conversations");
  });
});
