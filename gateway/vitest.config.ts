import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    environment: "node",
    testTimeout: 20_000,
    // Starts nothing itself: hands out the directory of the run's shared PostgreSQL.
    globalSetup: ["test/global-setup.ts"],
  },
});
