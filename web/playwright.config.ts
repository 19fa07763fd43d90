import { defineConfig } from "@playwright/test";
import { chromiumLaunch } from "./e2e/chromium";

// E2E_WEB_URL is set either by the caller (stand-in mode: globalSetup then
// spawns nothing) or by e2e/global-setup.ts after the real stack is up.
// Workers are started after globalSetup and re-read this file, so they see it.
export default defineConfig({
  testDir: "./e2e",
  testMatch: "**/*.spec.ts",
  globalSetup: "./e2e/global-setup.ts",
  globalTeardown: "./e2e/global-teardown.ts",
  workers: 1,
  retries: 0,
  fullyParallel: false,
  forbidOnly: !!process.env.CI,
  timeout: 60_000,
  expect: { timeout: 15_000 },
  reporter: "list",
  outputDir: "test-results",
  use: {
    baseURL: process.env.E2E_WEB_URL,
    trace: "retain-on-failure",
    screenshot: "only-on-failure",
    launchOptions: chromiumLaunch,
  },
  projects: [{ name: "chromium", use: { browserName: "chromium" } }],
});
