import { defineConfig } from "@playwright/test";
import { chromiumLaunch } from "./e2e/chromium";

/**
 * On-demand benchmarks (`npm run bench:render`), not part of `npm run test:e2e`: the built
 * app (`npm run build` first) is started on its own with an unreachable gateway, and every
 * API call the page makes is answered inside the browser.
 */
const port = Number(process.env.PERF_PORT ?? 3197);
// PERF_WEB_DIR: measure another build of this app (e.g. an older commit's web/, built).
const dir = process.env.PERF_WEB_DIR ?? ".";

export default defineConfig({
  testDir: "./perf",
  testMatch: "**/*.bench.ts",
  workers: 1,
  retries: 0,
  timeout: 600_000,
  reporter: "list",
  outputDir: "test-results/perf",
  webServer: {
    command: `node ${dir}/server.mjs -p ${port} -H 127.0.0.1`,
    url: `http://127.0.0.1:${port}/`,
    env: { GATEWAY_URL: "http://127.0.0.1:9", NEXT_TELEMETRY_DISABLED: "1" },
    reuseExistingServer: false,
    timeout: 60_000,
  },
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    launchOptions: chromiumLaunch,
  },
  projects: [{ name: "chromium", use: { browserName: "chromium" } }],
});
