/**
 * `?next=` after sign-in never leaves the site, through the real stack and a real browser:
 * spellings that the browser reads as another host once it drops tabs and newlines and turns
 * backslashes into slashes.
 */
import { expect, test } from "./csp";

test.describe("sign-in keeps ?next= on this site", () => {
  const EMAIL = `redirect-${Date.now()}@example.com`;
  const PASSWORD = "correct horse battery";
  test.describe.configure({ mode: "serial", timeout: 150_000 });

  test.beforeAll(async ({ request }) => {
    const origin = process.env.E2E_WEB_URL ?? "";
    const signUp = () =>
      request.post("/api/auth/sign-up/email", {
        headers: { origin },
        data: { name: "Redirect Test", email: EMAIL, password: PASSWORD },
      });
    let res = await signUp();
    // 5 sign-ups a minute from one address, and the whole run signs up from 127.0.0.1.
    if (res.status() === 429) {
      await new Promise((r) =>
        setTimeout(r, Number(res.headers()["retry-after"] ?? "60") * 1000 + 500),
      );
      res = await signUp();
    }
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
      const signIn = async () => {
        const answer = page.waitForResponse((r) => r.url().includes("/api/auth/sign-in/email"));
        await page.getByRole("button", { name: "Sign in" }).click();
        return answer;
      };
      let answer = await signIn();
      // The gateway allows 10 sign-ins a minute from one address, and the whole e2e run signs
      // in from 127.0.0.1: when this one is refused, wait as its 429 says and sign in again.
      if (answer.status() === 429) {
        await page.waitForTimeout(Number(answer.headers()["retry-after"] ?? "60") * 1000 + 500);
        answer = await signIn();
      }
      expect(answer.status()).toBe(200);
      await expect(page).toHaveURL(`${process.env.E2E_WEB_URL}/chat`);
      expect(visitedEvil).toBe(false);
    });
  }
});
