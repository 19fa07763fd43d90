import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// lib/ tests run in node; component tests (components/**/*.test.tsx) declare
// `// @vitest-environment jsdom` at their top.
export default defineConfig({
  resolve: {
    alias: { "@": fileURLToPath(new URL(".", import.meta.url)) },
  },
  oxc: { jsx: { runtime: "automatic" } },
  test: {
    environment: "node",
    include: ["lib/**/*.test.ts", "components/**/*.test.{ts,tsx}", "server.test.ts"],
    exclude: ["node_modules", ".next", "e2e"],
    setupFiles: ["./vitest.setup.ts"],
  },
});
