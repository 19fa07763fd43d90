import { expect, test } from "./csp";

test("home page shows the product and the stack status", async ({ page }, testInfo) => {
  const webUrl = process.env.E2E_WEB_URL;
  expect(webUrl, "E2E_WEB_URL must be set by globalSetup or the caller").toBeTruthy();

  const response = await page.goto("/");
  expect(response?.status()).toBe(200);

  await expect(page.getByRole("heading", { level: 1, name: "Local LLM Stack" })).toBeVisible();

  const panel = page.getByRole("region", { name: "Status" });
  await expect(panel).toBeVisible();
  await expect(panel.getByTestId("gateway-status")).toHaveText(/^(reachable|unreachable)$/);
  await expect(panel.getByTestId("model-status")).toHaveText(/^(ready|not ready)$/);

  // With the real stack (gateway URL known) the gateway and the model must both be up.
  if (process.env.E2E_GATEWAY_URL) {
    await expect(panel.getByTestId("gateway-status")).toHaveText("reachable");
    await expect(panel.getByTestId("model-status")).toHaveText("ready");
  }

  const path = "test-results/screenshots/home.png";
  await page.screenshot({ path, fullPage: true });
  await testInfo.attach("home", { path, contentType: "image/png" });
});
