/**
 * `?next=` after sign-in never leaves the site, through the real stack and a real browser:
 * spellings that the browser reads as another host once it drops tabs and newlines and turns
 * backslashes into slashes.
 */
import { expect, test } from "./csp";

test.describe("sign-in keeps ?next= on this site", () => {
  const EMAIL = `redirect-${Date.now()}@example.com`;
  const PASSWORD = "correct horse battery";
  test.describe.configure({ mode: "serial", timeout: 90_000 });

  test.beforeAll(async ({ request }) => {
    const origin = process.env.E2E_WEB_URL ?? "";
    const res = await request.post("/api/auth/sign-up/email", {
      headers: { origin },
      data: { name: "Redirect Test", email: EMAIL, password: PASSWORD },
    });
    expect(res.status(), await res.text()).toBe(200);
  });

  // Each one passed the old check (starts with "/", not "//" or "/\") and the browser read
  // it as http://evil.example/ once tabs, newlines and backslashes were normalised.
  for (const next of ["/%09/evil.example/", "/%0A/evil.example/", "/%09%5Cevil.example/"]) {
    test(`next=${next} lands on /chat, not on evil.example`, async ({ page }) => {
      let visitedEvil = false;
      // Matched on the host: the sign-in page's own address has "evil.example" in its query.
      await page.route(
        (url) => url.hostname === "evil.example",
        async (route) => {
          visitedEvil = true;
          await route.fulfill({ status: 200, contentType: "text/html", body: "<h1>evil</h1>" });
        },
      );
      await page.goto(`/sign-in?next=${next}`);
      await page.getByLabel("Email").fill(EMAIL);
      await page.getByLabel("Password").fill(PASSWORD);
      // better-auth allows 3 sign-ins per 10 s from one address (every spec signs in from
      // 127.0.0.1): wait out that window so this sign-in is never the one refused with a 429.
      await page.waitForTimeout(11_000);
      await page.getByRole("button", { name: "Sign in" }).click();
      await expect(page).toHaveURL(`${process.env.E2E_WEB_URL}/chat`);
      expect(visitedEvil).toBe(false);
    });
  }
});
