/**
 * The whole product through the real stack (llm-server with the embedded
 * model, gateway, web): sign up → chat with a streamed answer → stop mid-stream
 * → the conversation survives a reload → analyze a text → create an API key and
 * use it with curl against /v1/chat/completions → an admin sees that usage.
 *
 * One browser context is shared by the serial tests (one signed-in user). The
 * embedded model is a tiny base model: answers are nonsense, but real tokens.
 */
import { execFileSync } from "node:child_process";
import { type BrowserContext, expect, type Page, type TestInfo, test } from "@playwright/test";

test.describe.configure({ mode: "serial" });

const EMAIL = `e2e-${Date.now()}@example.com`;
const PASSWORD = "correct horse battery";
const NAME = "E2E Admin";

let context: BrowserContext;
let page: Page;
let conversationUrl = "";
let apiKey = "";

async function shot(p: Page, info: TestInfo, name: string) {
  const path = `test-results/screenshots/${name}.png`;
  await p.screenshot({ path, fullPage: true });
  await info.attach(name, { path, contentType: "image/png" });
}

/** True when the gateway answers 404 "Route … not found" (route not implemented yet). */
async function routeMissing(p: Page, method: string, path: string): Promise<boolean> {
  const res = await p.request.fetch(path, {
    method,
    headers: { origin: new URL(p.url()).origin },
    data: method === "GET" ? undefined : {},
    failOnStatusCode: false,
  });
  if (res.status() !== 404) return false;
  const text = await res.text();
  return /Route .* not found/.test(text);
}

async function setMaxTokens(p: Page, n: number) {
  const panel = p.locator("details.params");
  if (!(await panel.evaluate((d) => (d as HTMLDetailsElement).open))) {
    await panel.locator("summary").click();
  }
  await p.getByLabel("Max tokens").fill(String(n));
  await panel.locator("summary").click();
}

test.beforeAll(async ({ browser }) => {
  context = await browser.newContext({ baseURL: process.env.E2E_WEB_URL });
  page = await context.newPage();
});

test.afterAll(async () => {
  await context?.close();
});

test("an expired or missing session sends the user to sign-in and back", async () => {
  const info = test.info();
  await page.goto("/account");
  await expect(page).toHaveURL(/\/sign-in\?next=%2Faccount$/);
  await expect(page.getByRole("heading", { name: "Sign in" })).toBeVisible();
  await shot(page, info, "sign-in");
});

test("sign up: the first account becomes admin and lands in the chat", async () => {
  const info = test.info();
  await page.getByRole("link", { name: "Sign up" }).click();
  await expect(page.getByRole("heading", { name: "Create an account" })).toBeVisible();
  await page.getByLabel("Name").fill(NAME);
  await page.getByLabel("Email").fill(EMAIL);
  await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
  await page.getByLabel("Repeat password").fill(PASSWORD);
  await shot(page, info, "sign-up");
  await page.getByRole("button", { name: "Sign up" }).click();
  // Back where the user was going (the account page), signed in.
  await expect(page).toHaveURL(/\/account$/);
  await expect(page.getByRole("heading", { level: 1, name: "Account" })).toBeVisible();
  await expect(
    page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Admin" }),
  ).toBeVisible();
});

test("sign out, wrong password is refused inline, then sign in", async () => {
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/sign-in/);
  await page.getByLabel("Email").fill(EMAIL);
  await page.getByLabel("Password").fill("not the password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("form", { name: "Sign in" }).getByRole("alert")).toHaveText(
    "Wrong email or password.",
  );
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/chat$/);
  await expect(page.getByRole("heading", { name: "New chat" })).toBeVisible();
});

test("chat: the answer streams into the page token by token", async () => {
  const info = test.info();
  await page.goto("/chat");
  test.fixme(
    await routeMissing(page, "GET", "/api/conversations"),
    "gateway route GET/POST /api/conversations (+ /:id/messages SSE) not implemented yet",
  );
  await page.evaluate(() => {
    window.__chatTimings = [];
  });
  await setMaxTokens(page, 32);
  const box = page.getByRole("textbox", { name: "Message" });
  await box.fill("The capital of France is");
  await box.press("Enter");
  await expect(page).toHaveURL(/\/chat\/[^/]+$/);
  conversationUrl = new URL(page.url()).pathname;
  const answer = page.getByTestId("msg-assistant").last();
  // While streaming, the Stop button is there and text grows.
  await expect(answer.locator(".markdown")).toBeVisible();
  await expect(page.getByRole("button", { name: "Regenerate" })).toBeVisible({ timeout: 30_000 });
  expect(((await answer.locator(".markdown").textContent()) ?? "").trim().length).toBeGreaterThan(
    0,
  );
  await expect(page.getByTestId("conversation-list").getByRole("link")).toHaveCount(1);

  const timings = await page.evaluate(() => window.__chatTimings ?? []);
  expect(timings.length).toBeGreaterThan(1);
  const lat = timings.map((t) => t.renderedAt - t.receivedAt).sort((a, b) => a - b);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? 0;
  const summary = `deltas=${lat.length} p50=${q(0.5).toFixed(2)}ms p95=${q(0.95).toFixed(2)}ms max=${(lat.at(-1) ?? 0).toFixed(2)}ms`;
  console.log(`[e2e] chunk arrival -> token in DOM: ${summary}`);
  info.annotations.push({ type: "token-render-latency", description: summary });
  expect(lat.at(-1) ?? 0).toBeLessThan(50);
  await shot(page, info, "chat");
});

test("chat: Stop aborts mid-stream and the conversation is still there after a reload", async () => {
  const info = test.info();
  test.fixme(!conversationUrl, "needs the chat test (gateway /api/conversations routes)");
  await page.goto(conversationUrl);
  await setMaxTokens(page, 200);
  const box = page.getByRole("textbox", { name: "Message" });
  await box.fill("Once upon a time");
  await box.press("Enter");
  const answer = page.getByTestId("msg-assistant").last();
  await expect(answer.locator(".markdown")).toBeVisible({ timeout: 30_000 });
  await page.getByRole("button", { name: "Stop" }).click();
  await expect(answer.getByText("Stopped")).toBeVisible();
  const partial = ((await answer.locator(".markdown").textContent()) ?? "").trim();
  expect(partial.length).toBeGreaterThan(0);

  await page.reload();
  await expect(page.getByTestId("msg-user").locator(".msg-text")).toHaveText([
    "The capital of France is",
    "Once upon a time",
  ]);
  await expect(page.getByTestId("msg-assistant")).toHaveCount(2);
  const saved = page.getByTestId("msg-assistant").last();
  await expect(saved.getByText("Stopped")).toBeVisible();
  // The saved partial answer starts like the one shown before Stop (the server may have a few more tokens).
  expect(((await saved.locator(".markdown").textContent()) ?? "").trim().slice(0, 10)).toBe(
    partial.slice(0, 10),
  );
  await shot(page, info, "chat-after-reload");
});

test("analyze: tokens coloured by probability, perplexity and token count", async () => {
  const info = test.info();
  await page.goto("/analyze");
  await page.getByLabel("Text").fill("The quick brown fox jumps over the lazy dog.");
  await page.getByRole("button", { name: "Analyze" }).click();
  await expect(page.getByTestId("token-count")).toHaveText(/^[1-9]\d*$/, { timeout: 30_000 });
  await expect(page.getByTestId("perplexity")).toHaveText(/^\d+(\.\d+)?$/);
  const tokens = page.getByTestId("tokens").getByRole("button");
  expect(await tokens.count()).toBeGreaterThan(3);
  // Keyboard focus shows the token's probability and top alternatives.
  await tokens.nth(2).focus();
  const tipId = await tokens.nth(2).getAttribute("aria-describedby");
  await expect(page.locator(`[id="${tipId}"]`)).toBeVisible();
  await expect(page.locator(`[id="${tipId}"]`)).toContainText("%");
  await shot(page, info, "analyze");
});

test("account: create an API key, copy it once, use it with curl against /v1/chat/completions", async () => {
  const info = test.info();
  await page.goto("/account");
  await page.getByLabel("Key name").fill("e2e key");
  await page.getByRole("button", { name: "Create key" }).click();
  const keyInput = page.getByTestId("new-api-key");
  await expect(keyInput).toHaveValue(/^llm_/);
  apiKey = await keyInput.inputValue();
  await expect(page.getByRole("cell", { name: "e2e key", exact: true })).toBeVisible();
  await shot(page, info, "account");

  const url = `${process.env.E2E_WEB_URL}/v1/chat/completions`;
  const body = JSON.stringify({
    model: "default",
    messages: [{ role: "user", content: "Say hello" }],
    max_tokens: 16,
  });
  const out = execFileSync(
    "curl",
    [
      "-sS",
      "--fail-with-body",
      "-H",
      `Authorization: Bearer ${apiKey}`,
      "-H",
      "Content-Type: application/json",
      "-d",
      body,
      url,
    ],
    { encoding: "utf8", timeout: 30_000 },
  );
  const json = JSON.parse(out) as { choices: { message: { content: string } }[]; usage?: unknown };
  expect(json.choices[0]?.message.content).toEqual(expect.any(String));

  // Without the key the same call is refused.
  const anon = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
  });
  expect(anon.status).toBe(401);

  // After the key is created, reloading never shows it again.
  await page.reload();
  await expect(page.getByTestId("new-api-key")).toHaveCount(0);
  await expect(page.getByText(apiKey)).toHaveCount(0);
});

test("admin: users list (search, role), and the usage of that key", async () => {
  const info = test.info();
  await page.goto("/admin");
  await expect(page.getByRole("heading", { level: 1, name: "Admin" })).toBeVisible();
  await page.getByLabel("Search users").fill(EMAIL.slice(0, 12));
  await expect(page.getByRole("cell", { name: EMAIL, exact: true })).toBeVisible();
  await expect(page.getByLabel(`Role of ${EMAIL}`)).toHaveValue("admin");
  const usage = page.getByTestId("admin-usage-h");
  await expect(usage.getByText("Loading…")).toHaveCount(0);
  await shot(page, info, "admin");
  test.fixme(
    await routeMissing(page, "GET", "/api/admin/usage"),
    "gateway route GET /api/admin/usage not implemented yet (later issue)",
  );
  await expect(usage).toContainText(/\d/);
});
