/**
 * PUBLIC_URL, in Chromium against real stacks: sign-up works at both loopback spellings out of
 * the box and at this machine's non-loopback address once PUBLIC_URL names it; an address that
 * is not configured gets the page naming the right address and the setting, never a bare
 * "Invalid origin".
 */
import type { Page } from "@playwright/test";
import { expect, test } from "./csp";
import { freePort, nonLoopbackIPv4, type Running, startOwnStack, startProcess } from "./own-stack";

const PASSWORD = "correct horse battery";

/** Signs up through the form at `base`; waits out the gateway's 5 sign-ups a minute per IP. */
async function signUpAt(page: Page, base: string): Promise<void> {
  const email = `public-url-${Date.now()}-${Math.random().toString(36).slice(2, 8)}@example.com`;
  for (let attempt = 0; attempt < 2; attempt++) {
    await page.goto(`${base}/sign-up`);
    await page.getByLabel("Name").fill("Public URL");
    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
    await page.getByLabel("Repeat password").fill(PASSWORD);
    const answer = page.waitForResponse((r) => r.url().includes("/api/auth/sign-up/email"));
    await page.getByRole("button", { name: "Sign up" }).click();
    const response = await answer;
    if (response.status() === 429 && attempt === 0) {
      await page.waitForTimeout(Number(response.headers()["retry-after"] ?? "60") * 1000 + 500);
      continue;
    }
    expect(response.status(), `sign-up at ${base}: ${await response.text()}`).toBe(200);
    await expect(page).toHaveURL(`${base}/chat`);
    return;
  }
}

/** This machine's non-loopback address; without one the test is skipped (failed under CI). */
function machineAddress(): string {
  const ip = nonLoopbackIPv4();
  if (!ip) {
    const why = "no non-loopback IPv4 address on this machine (os.networkInterfaces())";
    if (process.env.CI === "true") throw new Error(`${why}: required under CI=true`);
    console.warn(`[e2e] SKIPPED: ${why}`);
    test.skip(true, why);
  }
  return ip as string;
}

test.describe("PUBLIC_URL", () => {
  test.describe.configure({ mode: "serial", timeout: 150_000 });

  test("out of the box, sign-up works at localhost and at 127.0.0.1", async ({ page }) => {
    const port = new URL(process.env.E2E_WEB_URL ?? "").port;
    for (const host of ["localhost", "127.0.0.1"]) {
      await page.context().clearCookies();
      await signUpAt(page, `http://${host}:${port}`);
    }
  });

  test.describe("at this machine's non-loopback address", () => {
    test.describe.configure({ timeout: 330_000 });
    let stack: Running<{ web: string; public?: string }> | undefined;
    let ip = "";

    test.beforeAll(async () => {
      test.setTimeout(330_000);
      ip = machineAddress();
      // Listening on every address, so that 127.0.0.1 reaches the page for other addresses.
      stack = await startOwnStack(["--public-host", ip, "--web-host", "0.0.0.0"]);
    });

    test.afterAll(async () => {
      await stack?.stop();
    });

    test("sign-up works there with PUBLIC_URL set to it", async ({ page }) => {
      const publicUrl = stack?.ready.public ?? "";
      expect(publicUrl).toMatch(new RegExp(`^http://${ip.replaceAll(".", "\\.")}:\\d+$`));
      await signUpAt(page, publicUrl);
    });

    test("a loopback address shows the page naming PUBLIC_URL", async ({ page }) => {
      const publicUrl = stack?.ready.public ?? "";
      const port = new URL(publicUrl).port;
      const response = await page.goto(`http://127.0.0.1:${port}/sign-up?next=%2Fchat`);
      expect(response?.status()).toBe(421);
      await expect(page.getByRole("heading", { level: 1 })).toHaveText(
        "Open the app at its configured address",
      );
      await expect(page.locator("main")).toContainText(`opened at http://127.0.0.1:${port}`);
      await expect(page.locator("main")).not.toContainText("Invalid origin");
      const link = page.getByRole("link", { name: publicUrl });
      await expect(link).toHaveAttribute("href", `${publicUrl}/sign-up?next=%2Fchat`);
      await expect(page.locator("main")).toContainText(`PUBLIC_URL=http://127.0.0.1:${port}`);
      await link.click();
      await expect(page.getByRole("heading", { name: "Create an account" })).toBeVisible();
      expect(page.url()).toBe(`${publicUrl}/sign-up?next=%2Fchat`);
    });
  });

  test.describe("an address that is not configured", () => {
    let web: Running<true> | undefined;
    let port = 0;

    test.beforeAll(async () => {
      machineAddress();
      port = await freePort();
      // The web alone is enough: the page comes from it before any gateway is asked.
      web = await startProcess(
        process.execPath,
        ["server.mjs", "-p", String(port), "-H", "0.0.0.0"],
        { PUBLIC_URL: `http://localhost:${port}`, GATEWAY_URL: "http://127.0.0.1:1" },
        (line) => (line.startsWith("web listening on") ? true : undefined),
        60_000,
      );
    });

    test.afterAll(async () => {
      await web?.stop();
    });

    test("opened at the machine's address, it names localhost and the setting to change", async ({
      page,
    }) => {
      const ip = machineAddress();
      const response = await page.goto(`http://${ip}:${port}/sign-up`);
      expect(response?.status()).toBe(421);
      expect(response?.headers()["content-security-policy"]).toContain("default-src 'self'");
      const main = page.locator("main");
      await expect(main).toContainText(`opened at http://${ip}:${port}`);
      await expect(main).toContainText(
        `set up to be used at http://localhost:${port} (or http://127.0.0.1:${port}, http://[::1]:${port})`,
      );
      await expect(main).toContainText("works only on the machine running the app");
      await expect(main).toContainText(`set PUBLIC_URL=http://${ip}:${port}`);
      await expect(page.getByRole("link", { name: `http://localhost:${port}` })).toHaveAttribute(
        "href",
        `http://localhost:${port}/sign-up`,
      );
      // The configured address itself is served normally.
      const home = await page.goto(`http://127.0.0.1:${port}/`);
      expect(home?.status()).toBe(200);
    });
  });
});
