import { describe, expect, it } from "vitest";
import { safeNext } from "./auth-client";
import { authErrorMessage } from "./auth-errors";

describe("safeNext", () => {
  it("keeps local paths only", () => {
    expect(safeNext("/chat/abc?x=1")).toBe("/chat/abc?x=1");
    expect(safeNext("//evil.example")).toBe("/chat");
    expect(safeNext("https://evil.example")).toBe("/chat");
    expect(safeNext("/\\evil")).toBe("/chat");
    expect(safeNext(null, "/account")).toBe("/account");
  });

  // `next` as it appears in the address bar: the page reads it decoded once, as here.
  const ORIGIN = "http://localhost:3000";
  const offSite = [
    "//evil.example",
    "//evil.example/",
    "///evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/%5Cevil.example",
    "/%5C%5Cevil.example",
    "/%5C/evil.example",
    "/%09/evil.example/",
    "/%0A/evil.example",
    "/%0D%0A/evil.example",
    "/%09%5Cevil.example",
    "/%2F/evil.example",
    "%2F%2Fevil.example",
    "%2f%2fevil.example",
    "/..//evil.example",
    "/.//evil.example",
    "/x/../..//evil.example",
    "https://evil.example",
    "HTTPS://evil.example",
    "https:evil.example",
    "https:/evil.example",
    "http:\\\\evil.example",
    "%09//evil.example",
    "%20//evil.example",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "java%09script:alert(1)",
    "/%09javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "evil.example",
    "",
  ];

  it.each(offSite)("never leaves the site for next=%s", (raw) => {
    const next = new URLSearchParams(`next=${raw}`).get("next");
    const result = safeNext(next);
    // Whatever comes back, the browser resolves it on this site.
    expect(new URL(result, ORIGIN).origin).toBe(ORIGIN);
    expect(result.startsWith("/")).toBe(true);
    expect(result.startsWith("//")).toBe(false);
    expect(result).not.toMatch(/[\t\n\r\\]/);
  });

  it("refuses every spelling of another host (fallback /chat)", () => {
    const tricky = [
      "/%09/evil.example/",
      "/%0A/evil.example",
      "/%09%5Cevil.example",
      "/..//evil.example",
    ];
    for (const raw of tricky) {
      expect(safeNext(new URLSearchParams(`next=${raw}`).get("next")), raw).toBe("/chat");
    }
  });

  it("keeps encoded slashes and backslashes as part of a local path", () => {
    expect(safeNext("/%2F%2Fevil.example")).toBe("/%2F%2Fevil.example");
    expect(safeNext("/%5Cevil.example")).toBe("/%5Cevil.example");
  });

  it("returns the normalised local path, query and fragment", () => {
    expect(safeNext("/chat/../account?tab=keys#new")).toBe("/account?tab=keys#new");
    expect(safeNext("/chat/a b")).toBe("/chat/a%20b");
  });
});

describe("authErrorMessage", () => {
  it("is specific", () => {
    expect(authErrorMessage({ status: 401, code: "INVALID_EMAIL_OR_PASSWORD" })).toBe(
      "Wrong email or password.",
    );
    expect(authErrorMessage({ status: 429 }, 42)).toBe("Too many attempts. Try again in 42 s.");
    expect(
      authErrorMessage({ status: 403, code: "BANNED_USER", message: "You have been banned" }),
    ).toBe("This account is disabled. Contact an administrator.");
    expect(authErrorMessage({ status: 403, message: "Your account is disabled." })).toBe(
      "Your account is disabled.",
    );
    expect(authErrorMessage({ status: 401 }, undefined, "two-factor")).toMatch(/code is not valid/);
    expect(
      authErrorMessage({ status: 422, code: "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL" }),
    ).toMatch(/already exists/);
    // Never better-auth's bare "Invalid origin".
    expect(
      authErrorMessage(
        { status: 403, code: "INVALID_ORIGIN", message: "Invalid origin" },
        0,
        "sign-up",
      ),
    ).toMatch(/address the server is not set up for.*PUBLIC_URL/);
  });
});
