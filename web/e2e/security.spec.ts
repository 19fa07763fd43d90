/**
 * The browser-facing defences of the web app, through the real stack: the security headers
 * of every page, a Content-Security-Policy the app runs under (and that stops an injected
 * script), and no framing.
 */
import { expect, test, watchCsp } from "./csp";

const PAGES = [
  "/",
  "/chat",
  "/account",
  "/admin",
  "/analyze",
  "/sign-in",
  "/sign-up",
  "/forgot-password",
  "/reset-password",
];

function directives(csp: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const part of csp.split(";")) {
    const [name, ...values] = part.trim().split(/\s+/);
    if (name) out.set(name.toLowerCase(), values);
  }
  return out;
}

test.describe("security headers", () => {
  for (const path of PAGES) {
    test(`${path} carries CSP, no framing, nosniff, referrer and permissions policies`, async ({
      request,
    }) => {
      const res = await request.get(path, { maxRedirects: 0 });
      expect(res.status(), path).toBe(200);
      const h = res.headers();
      expect(h["x-frame-options"]).toBe("DENY");
      expect(h["x-content-type-options"]).toBe("nosniff");
      expect(h["referrer-policy"]).toBe("strict-origin-when-cross-origin");
      expect(h["permissions-policy"]).toMatch(/camera=\(\)/);
      expect(h["permissions-policy"]).toMatch(/microphone=\(\)/);

      const csp = directives(h["content-security-policy"] ?? "");
      expect(csp.get("frame-ancestors")).toEqual(["'none'"]);
      expect(csp.get("object-src")).toEqual(["'none'"]);
      expect(csp.get("default-src")).toEqual(["'self'"]);
      const scripts = csp.get("script-src") ?? [];
      expect(scripts.some((s) => /^'nonce-[A-Za-z0-9+/]{22}==?'$/.test(s))).toBe(true);
      expect(scripts).not.toContain("'unsafe-inline'");
      expect(scripts).not.toContain("'unsafe-eval'");
      expect(csp.get("base-uri")).toEqual(["'none'"]);
      expect(csp.get("form-action")).toEqual(["'self'"]);

      // The nonce is the one Next.js put on the page's scripts.
      const nonce = /'nonce-([^']+)'/.exec(h["content-security-policy"] ?? "")?.[1];
      const html = await res.text();
      expect(html).toContain(`nonce="${nonce}"`);
    });
  }

  test("every response gets a fresh nonce", async ({ request }) => {
    const nonces = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const csp = (await request.get("/sign-in")).headers()["content-security-policy"] ?? "";
      nonces.add(/'nonce-([^']+)'/.exec(csp)?.[1] ?? "");
    }
    expect(nonces.size).toBe(3);
  });
});

test.describe("the app under its CSP", () => {
  for (const path of PAGES) {
    test(`${path} runs with no CSP violation`, async ({ page }) => {
      // The `page` of ./csp fails the test on any violation; here the page must also work,
      // i.e. its scripts ran: the (app) pages send a visitor without a session to sign-in.
      await page.goto(path);
      if (["/chat", "/account", "/admin", "/analyze"].includes(path)) {
        await expect(page).toHaveURL(/\/sign-in\?next=/);
      }
      await expect(page.locator("h1").first()).toBeVisible();
      await page.waitForLoadState("networkidle");
    });
  }

  test("a script injected into the page (stored XSS) is blocked and reported", async ({
    browser,
  }) => {
    const context = await browser.newContext({ baseURL: process.env.E2E_WEB_URL });
    const seen = await watchCsp(context);
    const page = await context.newPage();
    // The real page and its real headers, with markup an attacker got into it.
    await page.route("**/sign-in", async (route) => {
      const response = await route.fetch();
      const html = (await response.text()).replace(
        "</body>",
        `<script>window.__injected = "script"</script>` +
          `<img src="data:," onerror="window.__injectedHandler = 'handler'"></body>`,
      );
      await route.fulfill({ response, body: html });
    });
    await page.goto("/sign-in");
    await expect(page.getByRole("heading", { name: "Sign in" })).toBeVisible();
    await expect.poll(() => seen.length).toBeGreaterThanOrEqual(2);
    expect(seen.join("\n")).toMatch(/script-src-elem blocked inline/);
    expect(seen.join("\n")).toMatch(/script-src-attr blocked inline/);
    const ran = await page.evaluate(() => {
      const w = window as unknown as Record<string, unknown>;
      return [w.__injected, w.__injectedHandler];
    });
    expect(ran).toEqual([undefined, undefined]);
    // The app's own scripts still ran: React hydrated the form.
    const hydrated = await page
      .getByRole("button", { name: "Sign in" })
      .evaluate((el) => Object.keys(el).some((key) => key.startsWith("__reactFiber")));
    expect(hydrated).toBe(true);
    await context.close();
  });

  test("no page can be framed by another site", async ({ browser }) => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const target = `${process.env.E2E_WEB_URL}/sign-in`;
    await page.setContent(`<iframe title="framed" src="${target}"></iframe>`);
    // The frame's navigation ends on Chromium's error page, never on the sign-in page.
    await expect.poll(() => page.frames()[1]?.url() ?? "about:blank").not.toMatch(/^about:blank$/);
    await page.waitForTimeout(500);
    expect(page.frames()[1]?.url()).toMatch(/^chrome-error:/);
    await expect(page.frameLocator("iframe").getByRole("heading")).toHaveCount(0);
    await context.close();
  });
});
