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
  });
});
