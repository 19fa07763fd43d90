import { describe, expect, it } from "vitest";
import { describeError } from "./errors";
import { ApiError, errorFromResponse, formatWait, parseRetryAfter } from "./http";

describe("parseRetryAfter", () => {
  it("reads seconds and HTTP dates", () => {
    expect(parseRetryAfter("30")).toBe(30);
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(
      parseRetryAfter("Wed, 21 Oct 2015 07:28:10 GMT", Date.parse("Wed, 21 Oct 2015 07:28:00 GMT")),
    ).toBe(10);
    expect(parseRetryAfter("soon")).toBeUndefined();
  });
});

describe("errorFromResponse", () => {
  it("reads the gateway envelope, better-auth's flat shape and X-Retry-After", async () => {
    const a = await errorFromResponse(
      Response.json(
        { error: { code: "BUSY", message: "All slots busy" } },
        { status: 503, headers: { "retry-after": "3" } },
      ),
    );
    expect(a).toMatchObject({
      status: 503,
      code: "BUSY",
      message: "All slots busy",
      retryAfter: 3,
    });
    const b = await errorFromResponse(
      Response.json(
        { code: "INVALID_EMAIL_OR_PASSWORD", message: "Invalid" },
        { status: 401, headers: { "x-retry-after": "9" } },
      ),
    );
    expect(b).toMatchObject({ status: 401, code: "INVALID_EMAIL_OR_PASSWORD", retryAfter: 9 });
    const c = await errorFromResponse(
      new Response("oops", { status: 500, statusText: "Internal" }),
    );
    expect(c).toMatchObject({ status: 500, code: "HTTP_500", message: "Internal" });
  });
});

describe("describeError", () => {
  it("says what to do for quota, busy and lost connections", () => {
    const quota = describeError(new ApiError(429, "QUOTA", "Daily token quota used up.", 300));
    expect(quota).toEqual({
      title: "Quota reached",
      detail: "Daily token quota used up. You can try again in 5 min.",
      retryable: true,
    });
    expect(describeError(new ApiError(503, "BUSY", "Server busy.", 4)).detail).toBe(
      "Server busy. Try again in 4 s.",
    );
    expect(describeError(new ApiError(0, "NETWORK_ERROR", "Connection lost.")).title).toBe(
      "Connection lost",
    );
    expect(describeError(new ApiError(404, "NOT_FOUND", "nope")).retryable).toBe(false);
    expect(formatWait(7200, 0)).toMatch(/^at /);
  });
});
