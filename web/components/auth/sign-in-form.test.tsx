// @vitest-environment jsdom
import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";

const replace = vi.fn();
vi.mock("next/navigation", () => ({ useRouter: () => ({ replace, refresh: () => {} }) }));
vi.mock("next/link", () => ({
  default: ({ href, children }: { href: string; children: React.ReactNode }) => (
    <a href={href}>{children}</a>
  ),
}));

const signInEmail = vi.fn();
const verifyTotp = vi.fn();
vi.mock("@/lib/auth-client", () => ({
  authClient: {
    signIn: { email: (...a: unknown[]) => signInEmail(...a), social: vi.fn() },
    twoFactor: { verifyTotp: (...a: unknown[]) => verifyTotp(...a) },
  },
}));

import { SignInForm } from "./sign-in-form";

beforeEach(() => {
  replace.mockReset();
  signInEmail.mockReset();
  verifyTotp.mockReset();
  vi.stubGlobal(
    "fetch",
    vi.fn(async () => Response.json({ providers: [] })),
  );
});

async function submit(email = "a@b.c", password = "secret123") {
  await userEvent.type(screen.getByLabelText("Email"), email);
  await userEvent.type(screen.getByLabelText("Password"), password);
  await userEvent.click(screen.getByRole("button", { name: "Sign in" }));
}

describe("SignInForm", () => {
  it("goes to `next` on success", async () => {
    signInEmail.mockResolvedValue({ data: { user: {} }, error: null });
    render(<SignInForm next="/chat/42" />);
    await submit();
    expect(signInEmail).toHaveBeenCalledWith(
      { email: "a@b.c", password: "secret123" },
      expect.objectContaining({ onError: expect.any(Function) }),
    );
    expect(replace).toHaveBeenCalledWith("/chat/42");
  });

  it("shows wrong credentials, and too many attempts with the wait from Retry-After", async () => {
    signInEmail.mockResolvedValueOnce({
      data: null,
      error: { status: 401, code: "INVALID_EMAIL_OR_PASSWORD" },
    });
    render(<SignInForm next="/chat" />);
    await submit();
    expect(await screen.findByText("Wrong email or password.")).toBeTruthy();

    signInEmail.mockImplementationOnce(
      async (_body: unknown, opts: { onError: (c: unknown) => void }) => {
        opts.onError({
          response: new Response(null, { status: 429, headers: { "x-retry-after": "30" } }),
        });
        return { data: null, error: { status: 429, message: "Too many requests" } };
      },
    );
    await userEvent.click(screen.getByRole("button", { name: "Sign in" }));
    expect(await screen.findByText("Too many attempts. Try again in 30 s.")).toBeTruthy();
    expect(replace).not.toHaveBeenCalled();
  });

  it("asks for the TOTP code when two-factor is on", async () => {
    signInEmail.mockResolvedValue({ data: { twoFactorRedirect: true }, error: null });
    verifyTotp.mockResolvedValueOnce({ data: null, error: { status: 401, code: "INVALID_CODE" } });
    verifyTotp.mockResolvedValueOnce({ data: { token: "t" }, error: null });
    render(<SignInForm next="/account" />);
    await submit();
    const code = await screen.findByLabelText("Authentication code");
    await userEvent.type(code, "123 456");
    await userEvent.click(screen.getByRole("button", { name: "Verify" }));
    await vi.waitFor(() => expect(verifyTotp).toHaveBeenCalled());
    expect(await screen.findByText(/code is not valid/)).toBeTruthy();
    expect(verifyTotp).toHaveBeenCalledWith(
      { code: "123456", trustDevice: false },
      expect.anything(),
    );
    await userEvent.click(screen.getByRole("button", { name: "Verify" }));
    await vi.waitFor(() => expect(replace).toHaveBeenCalledWith("/account"));
  });
});
