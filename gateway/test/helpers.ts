import type { Config } from "../src/config.js";

/** A complete, valid config for tests; override fields as needed. */
export function testConfig(overrides: Partial<Config> = {}): Config {
  return {
    appEnv: "test",
    host: "127.0.0.1",
    port: 0,
    llmServerUrls: ["http://127.0.0.1:1"],
    llmServerToken: "test-llm-server-token-0123456789",
    authSecret: "test-auth-secret-0123456789abcdef0123456789",
    databasePath: ":memory:",
    webOrigin: "http://localhost:3000",
    logLevel: "silent",
    warnings: [],
    ...overrides,
  };
}
