import type { FullConfig } from "@playwright/test";
import { stackLogPath, startStack } from "./stack";

export default async function globalSetup(_config: FullConfig): Promise<void> {
  if (process.env.E2E_WEB_URL) {
    console.log(`[e2e] E2E_WEB_URL=${process.env.E2E_WEB_URL} given: not starting the stack`);
    return;
  }
  const urls = await startStack();
  process.env.E2E_WEB_URL = urls.web;
  process.env.E2E_GATEWAY_URL = urls.gateway;
  process.env.E2E_LLM_URL = urls.llm;
  process.env.E2E_STACK_LOG = stackLogPath;
  if (urls.data) process.env.E2E_DATA_DIR = urls.data;
  console.log(`[e2e] stack ready: ${JSON.stringify(urls)}`);
}
