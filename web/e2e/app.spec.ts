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
import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import AxeBuilder from "@axe-core/playwright";
import { type BrowserContext, expect, type Page, type TestInfo, test } from "@playwright/test";
import { expectNoCspViolations, watchCsp } from "./csp";
import { watchTokenLatency } from "./token-latency";

test.describe.configure({ mode: "serial", timeout: 120_000 });
// The model shares the CPU with everything else running on the machine: allow it time.
const MODEL_TIMEOUT = 60_000;

const EMAIL = `e2e-${Date.now()}@example.com`;
const PASSWORD = "correct horse battery";
const NAME = "E2E Admin";

let context: BrowserContext;
let page: Page;
let conversationUrl = "";
let apiKey = "";
/** LLM requests this user has made so far (chat turns and the curl call): the usage views must count at least these. */
let llmRequests = 0;
/** CSP violations in any browser context of this file: each test fails on its own. */
const cspViolations: string[] = [];

/** "1,234" -> 1234 */
const num = (text: string | null) => Number((text ?? "").replace(/[^\d.]/g, ""));

/** Saves a screenshot of the page and checks it with axe (WCAG 2 A/AA rules). */
async function shot(p: Page, info: TestInfo, name: string) {
  const path = `test-results/screenshots/${name}.png`;
  // The app shell scrolls inside its content pane: grow the viewport to show it all.
  const size = p.viewportSize();
  const inner = await p.evaluate(() =>
    Math.max(
      0,
      ...[...document.querySelectorAll(".content > *, .chat-log")].map(
        (el) => el.scrollHeight + el.getBoundingClientRect().top + 90,
      ),
    ),
  );
  if (size && inner > size.height) {
    await p.setViewportSize({ width: size.width, height: Math.min(4000, Math.ceil(inner)) });
  }
  await p.screenshot({ path, fullPage: true });
  if (size && inner > size.height) await p.setViewportSize(size);
  await info.attach(name, { path, contentType: "image/png" });
  const { violations } = await new AxeBuilder({ page: p })
    .withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"])
    .analyze();
  const summary = violations.map(
    (v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`,
  );
  expect(summary, `accessibility violations on ${name}`).toEqual([]);
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
  await watchCsp(context, cspViolations);
  page = await context.newPage();
});

test.afterEach(() => {
  expectNoCspViolations(cspViolations);
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

test("setup: the operator's one-time link (printed by the gateway) creates the admin", async () => {
  const info = test.info();
  const log = process.env.E2E_STACK_LOG;
  if (!log) throw new Error("the first admin needs the gateway's setup link: start the stack here");
  // Open sign-up is for users only; the page is still checked.
  await page.getByRole("link", { name: "Sign up" }).click();
  await expect(page.getByRole("heading", { name: "Create an account" })).toBeVisible();
  await shot(page, info, "sign-up");

  let link = "";
  await expect
    .poll(() => {
      link = /https?:\/\/\S+\/setup\?token=[\w-]+/.exec(readFileSync(log, "utf8"))?.[0] ?? "";
      return link;
    })
    .not.toBe("");
  const url = new URL(link);
  await page.goto(url.pathname + url.search);
  await expect(page.getByRole("heading", { name: "Create the admin account" })).toBeVisible();
  await page.getByLabel("Name").fill(NAME);
  await page.getByLabel("Email").fill(EMAIL);
  await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
  await page.getByLabel("Repeat password").fill(PASSWORD);
  await shot(page, info, "setup");
  await page.getByRole("button", { name: "Create admin account" }).click();
  // Signed in as the new admin, on the admin page.
  await expect(page).toHaveURL(/\/admin$/);
  await expect(page.getByRole("heading", { level: 1, name: "Admin" })).toBeVisible();
  await expect(
    page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Admin" }),
  ).toBeVisible();
  // The link is used up.
  const again = await page.request.post("/api/setup", {
    data: {
      token: url.searchParams.get("token"),
      email: "x@example.com",
      password: PASSWORD,
      name: "X",
    },
    failOnStatusCode: false,
  });
  expect(again.status()).toBe(409);
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
  await setMaxTokens(page, 32);
  const latency = await watchTokenLatency(page);
  const box = page.getByRole("textbox", { name: "Message" });
  await box.fill("The capital of France is");
  await box.press("Enter");
  llmRequests += 1;
  await expect(page).toHaveURL(/\/chat\/[^/]+$/);
  conversationUrl = new URL(page.url()).pathname;
  const answer = page.getByTestId("msg-assistant").last();
  // While streaming, the Stop button is there and text grows.
  await expect(answer.locator(".markdown")).toBeVisible();
  await expect(page.getByRole("button", { name: "Regenerate" })).toBeVisible({
    timeout: MODEL_TIMEOUT,
  });
  expect(((await answer.locator(".markdown").textContent()) ?? "").trim().length).toBeGreaterThan(
    0,
  );
  await expect(page.getByTestId("conversation-list").getByRole("link")).toHaveCount(1);
  // One model: its name, no choice to make; the embedded model is a base model, and the
  // chat says what that means. The answer names the model that answered.
  await expect(page.getByRole("combobox", { name: "Model" })).toHaveCount(0);
  const model = (await page.getByTestId("model-name").textContent()) ?? "";
  expect(model).not.toBe("");
  await expect(page.getByTestId("base-model-note")).toContainText("continues the text");
  await expect(answer.getByTestId("answer-model")).toHaveText(`Answered by ${model}`);

  // Browser side only (no timing bound: speed is for benchmarks): each network chunk of the
  // answer -> the next change of the chat log, from the DevTools network events and
  // performance marks (e2e/token-latency.ts).
  const { chunks, updates, gaps } = await latency.finish();
  expect(chunks).toBeGreaterThan(1);
  expect(updates).toBeGreaterThan(1);
  expect(gaps.length).toBeGreaterThan(1);
  const q = (p: number) => gaps[Math.min(gaps.length - 1, Math.floor(p * gaps.length))] ?? 0;
  const summary = `chunks=${chunks} shown=${gaps.length} median=${q(0.5).toFixed(1)}ms p95=${q(0.95).toFixed(1)}ms max=${(gaps.at(-1) ?? 0).toFixed(1)}ms`;
  console.log(`[e2e] chunk arrival -> chat log updated: ${summary}`);
  info.annotations.push({ type: "token-render-latency", description: summary });
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
  llmRequests += 1;
  const answer = page.getByTestId("msg-assistant").last();
  await expect(answer.locator(".markdown")).toBeVisible({ timeout: MODEL_TIMEOUT });
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
  // Compare at most what was shown: a partial shorter than 10 characters may have grown by a token.
  const n = Math.min(10, partial.length);
  expect(((await saved.locator(".markdown").textContent()) ?? "").trim().slice(0, n)).toBe(
    partial.slice(0, n),
  );
  await shot(page, info, "chat-after-reload");
});

test("chat: regenerate, edit & resend, copy", async () => {
  test.fixme(!conversationUrl, "needs the chat test (gateway /api/conversations routes)");
  await context.grantPermissions(["clipboard-read", "clipboard-write"]);
  await page.goto(conversationUrl);
  await setMaxTokens(page, 16);
  const answers = page.getByTestId("msg-assistant");
  await expect(answers).toHaveCount(2);

  // Regenerate replaces the last answer (the stopped one) with a new one.
  await page.getByRole("button", { name: "Regenerate" }).click();
  llmRequests += 1;
  await expect(page.getByRole("button", { name: "Stop" })).toBeHidden({ timeout: MODEL_TIMEOUT });
  await expect(answers).toHaveCount(2);
  await expect(answers.last().getByText("Stopped")).toHaveCount(0);

  // Copy puts the answer on the clipboard.
  await answers.last().getByRole("button", { name: "Copy answer" }).click();
  await expect(answers.last().getByRole("button", { name: "Copied" })).toBeVisible();
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  expect(copied.trim().length).toBeGreaterThan(0);

  // Edit the first question: everything after it is replaced by one new answer.
  await page.getByTestId("msg-user").first().getByRole("button", { name: "Edit" }).click();
  await page.getByLabel("Edit your message").fill("The capital of Italy is");
  await page.getByRole("button", { name: "Send edit" }).click();
  llmRequests += 1;
  await expect(page.getByRole("button", { name: "Stop" })).toBeHidden({ timeout: MODEL_TIMEOUT });
  await expect(page.getByTestId("msg-user").locator(".msg-text")).toHaveText([
    "The capital of Italy is",
  ]);
  await expect(answers).toHaveCount(1);
  await page.reload();
  await expect(page.getByTestId("msg-user").locator(".msg-text")).toHaveText([
    "The capital of Italy is",
  ]);
  await expect(answers).toHaveCount(1);
});

test("conversations: rename, search, export, delete", async () => {
  test.fixme(!conversationUrl, "needs the chat test (gateway /api/conversations routes)");
  await page.goto(conversationUrl);
  const list = page.getByTestId("conversation-list");
  await list.getByRole("group").first().locator("summary").click();
  await list.getByRole("button", { name: "Rename" }).click();
  const title = page.getByLabel(/^New title for/);
  await title.fill("Geography");
  await title.press("Enter");
  await expect(list.getByRole("link", { name: "Geography" })).toBeVisible();

  const search = page.getByRole("searchbox", { name: "Search conversations" });
  await search.fill("geog");
  await expect(list.getByRole("link")).toHaveCount(1);
  await search.fill("no such conversation");
  await expect(page.getByText("No match.")).toBeVisible();
  await search.fill("");
  await expect(list.getByRole("link", { name: "Geography" })).toBeVisible();

  const exportHref = await list
    .getByRole("link", { name: "Export Markdown", includeHidden: true })
    .getAttribute("href");
  const md = await page.request.get(exportHref ?? "");
  expect(md.status()).toBe(200);
  expect(await md.text()).toContain("The capital of Italy is");

  // A second conversation, then delete it.
  await page.getByRole("link", { name: "New chat" }).click();
  await expect(page.getByRole("heading", { name: "New chat" })).toBeVisible();
  await setMaxTokens(page, 8);
  await page.getByRole("textbox", { name: "Message" }).fill("Delete me");
  await page.getByRole("textbox", { name: "Message" }).press("Enter");
  llmRequests += 1;
  await expect(page.getByRole("button", { name: "Stop" })).toBeHidden({ timeout: MODEL_TIMEOUT });
  await expect(list.getByRole("link")).toHaveCount(2);
  page.once("dialog", (d) => void d.accept());
  const item = list.getByRole("listitem").filter({ hasText: "Delete me" });
  await item.locator("summary").click();
  await item.getByRole("button", { name: "Delete" }).click();
  await expect(page).toHaveURL(/\/chat$/);
  await expect(list.getByRole("link")).toHaveCount(1);
});

test("analyze: tokens coloured by probability, perplexity and token count", async () => {
  const info = test.info();
  await page.goto("/analyze");
  await page.getByLabel("Text").fill("The quick brown fox jumps over the lazy dog.");
  await page.getByRole("button", { name: "Analyze" }).click();
  await expect(page.getByTestId("token-count")).toHaveText(/^[1-9]\d*$/, {
    timeout: MODEL_TIMEOUT,
  });
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
    { encoding: "utf8", timeout: MODEL_TIMEOUT },
  );
  llmRequests += 1;
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

test("admin: users list, that user's usage (chat and API key) and a healthy llm-server", async () => {
  const info = test.info();
  expect(llmRequests).toBeGreaterThanOrEqual(6);
  await page.goto("/admin");
  await expect(page.getByRole("heading", { level: 1, name: "Admin" })).toBeVisible();
  await page.getByLabel("Search users").fill(EMAIL.slice(0, 12));
  await expect(page.getByRole("cell", { name: EMAIL, exact: true })).toBeVisible();
  await expect(page.getByLabel(`Role of ${EMAIL}`)).toHaveValue("admin");

  // Usage by user over the period: this user's row counts every request made above.
  const usage = page.getByTestId("admin-usage-h");
  const row = usage
    .getByRole("table", { name: "Usage by user" })
    .getByRole("row")
    .filter({ has: page.getByRole("rowheader", { name: EMAIL, exact: true }) });
  await expect(row).toHaveCount(1);
  const cells = row.getByRole("cell");
  const requests = num(await cells.nth(0).textContent());
  const prompt = num(await cells.nth(1).textContent());
  const completion = num(await cells.nth(2).textContent());
  const total = num(await cells.nth(3).textContent());
  console.log(
    `[e2e] admin usage for ${EMAIL}: requests=${requests} (made ${llmRequests}) tokens=${total}`,
  );
  expect(requests).toBeGreaterThanOrEqual(llmRequests);
  expect(prompt).toBeGreaterThanOrEqual(llmRequests); // every prompt has at least one token
  expect(completion).toBeGreaterThan(0);
  expect(total).toBe(prompt + completion);
  // The charts: tokens per day by user names the user; latency is drawn for today.
  await expect(usage.getByRole("list", { name: "Tokens per day by user: legend" })).toContainText(
    EMAIL,
  );
  const today = new Date().toISOString().slice(0, 10);
  const escaped = EMAIL.replace(/[.+]/g, "\\$&");
  await expect(usage.getByRole("img", { name: /^Tokens per day by user\./ })).toHaveAttribute(
    "aria-label",
    new RegExp(`${today}: [^;]*${escaped} [1-9]`),
  );
  await expect(usage.getByRole("img", { name: /^Latency percentiles per day\./ })).toHaveAttribute(
    "aria-label",
    new RegExp(`${today}: p50 \\d`),
  );
  await expect(
    usage.getByRole("figure").filter({ hasText: "Cache-hit and error rates" }),
  ).toBeVisible();
  await usage.getByRole("combobox", { name: "Tokens per day by" }).selectOption("model");
  await expect(usage.getByRole("img", { name: /^Tokens per day by model\./ })).toBeVisible();
  await expect(usage.getByRole("table", { name: "Usage by model" }).getByRole("row")).toHaveCount(
    2,
  );

  // The one llm-server of the stack, healthy, with the requests it served.
  const servers = page.getByTestId("admin-servers-h");
  await expect(servers.getByTestId("llm-server")).toHaveCount(1);
  await expect(servers.getByTestId("server-state")).toHaveText("healthy");
  await shot(page, info, "admin");

  // Admin → Models: without a routing file, the one model the llm-server lists, open to all.
  await page
    .getByRole("navigation", { name: "Admin pages" })
    .getByRole("link", { name: "Models" })
    .click();
  await expect(page.getByRole("heading", { level: 1, name: "Models" })).toBeVisible();
  const card = page.getByTestId("admin-model");
  await expect(card).toHaveCount(1);
  await expect(card.getByTestId("upstream-state")).toHaveText("up");
  await expect(card.getByText(/^No rule: everyone may use /)).toBeVisible();
  await shot(page, info, "admin-models");
});

test("account: usage this period against the quota", async () => {
  const info = test.info();
  const origin = new URL(page.url()).origin;
  const me = (await (await page.request.get("/api/user")).json()) as { id: string };
  // The admin role has no token limit by default: give this user one to measure against.
  const set = await page.request.patch(`/api/admin/users/${me.id}/limits`, {
    headers: { origin },
    data: { tokensPerDay: 1_000_000 },
  });
  expect(set.status()).toBe(200);
  try {
    await page.goto("/account");
    const usage = page.getByTestId("usage-h");
    const meters = usage.getByRole("list", { name: "Usage against quota" });
    const tokens = meters.getByRole("listitem").filter({ hasText: "Tokens today" });
    await expect(tokens).toContainText(/ \/ 1,000,000 · resets /);
    const used = num(
      ((await tokens.locator(".bar-value").textContent()) ?? "").split("/")[0] ?? "",
    );
    expect(used).toBeGreaterThan(0);
    await expect(
      meters.getByRole("listitem").filter({ hasText: "Requests this minute" }),
    ).toContainText("(no limit)");
    const totals = usage.getByRole("definition").first();
    expect(num(await totals.textContent())).toBeGreaterThanOrEqual(llmRequests);
    await expect(usage.getByRole("img", { name: /^Tokens per day\./ })).toBeVisible();
    await shot(page, info, "account-usage");
  } finally {
    await page.request.patch(`/api/admin/users/${me.id}/limits`, {
      headers: { origin },
      data: { tokensPerDay: null },
    });
  }
});

test("admin: change a user's role and disable them; a disabled account is refused at sign-in", async ({
  browser,
}) => {
  const other = await browser.newContext({ baseURL: process.env.E2E_WEB_URL });
  await watchCsp(other, cspViolations);
  const op = await other.newPage();
  const otherEmail = `other-${Date.now()}@example.com`;
  await op.goto("/sign-up");
  await op.getByLabel("Name").fill("Other User");
  await op.getByLabel("Email").fill(otherEmail);
  await op.getByLabel("Password", { exact: true }).fill(PASSWORD);
  await op.getByLabel("Repeat password").fill(PASSWORD);
  await op.getByRole("button", { name: "Sign up" }).click();
  await expect(op).toHaveURL(/\/chat$/);
  // Not an admin: no Admin link, and the admin page refuses.
  await expect(
    op.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Admin" }),
  ).toHaveCount(0);

  await page.goto("/admin");
  await page.getByLabel("Search users").fill(otherEmail);
  await expect(page.getByRole("cell", { name: otherEmail, exact: true })).toBeVisible();
  await expect(
    page.getByRole("region", { name: "Users", exact: true }).getByRole("row"),
  ).toHaveCount(2);
  const role = page.getByLabel(`Role of ${otherEmail}`);
  await role.selectOption("admin");
  await expect(
    page.getByRole("status").filter({ hasText: `Saved: ${otherEmail} role admin.` }),
  ).toBeVisible();
  await page.reload();
  await page.getByLabel("Search users").fill(otherEmail);
  await expect(page.getByLabel(`Role of ${otherEmail}`)).toHaveValue("admin");
  await page.getByLabel(`Role of ${otherEmail}`).selectOption("user");
  await expect(
    page.getByRole("status").filter({ hasText: `Saved: ${otherEmail} role user.` }),
  ).toBeVisible();
  await page.getByLabel(`Disable ${otherEmail}`).check();
  await expect(
    page.getByRole("status").filter({ hasText: `Saved: ${otherEmail} disabled.` }),
  ).toBeVisible();
  await page.reload();
  await page.getByLabel("Search users").fill(otherEmail);
  await expect(page.getByLabel(`Disable ${otherEmail}`)).toBeChecked();
  await expect(page.getByLabel(`Role of ${otherEmail}`)).toHaveValue("user");

  // Disabling signs the user out everywhere, and a new sign-in is refused with a clear message.
  await op.goto("/sign-in");
  await op.getByLabel("Email").fill(otherEmail);
  await op.getByLabel("Password").fill(PASSWORD);
  await op.getByRole("button", { name: "Sign in" }).click();
  await expect(op.getByRole("form", { name: "Sign in" }).getByRole("alert")).toHaveText(
    "This account is disabled. Contact an administrator.",
  );
  await other.close();
});

test("a session that expires mid-chat goes to sign-in and comes back to the conversation", async () => {
  test.fixme(!conversationUrl, "needs the chat test (gateway /api/conversations routes)");
  await page.goto(conversationUrl);
  await expect(page.getByTestId("msg-user").first()).toBeVisible();
  await context.clearCookies();
  await page.getByRole("textbox", { name: "Message" }).fill("Are you there?");
  await page.getByRole("textbox", { name: "Message" }).press("Enter");
  await expect(page).toHaveURL(
    new RegExp(`/sign-in\\?next=${encodeURIComponent(conversationUrl)}$`),
  );
  await page.getByLabel("Email").fill(EMAIL);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(new RegExp(`${conversationUrl}$`));
  await expect(page.getByTestId("msg-user").first()).toBeVisible();
});

test("password reset: the operator's link (bin/admin reset-link, no mail server) sets a new password", async ({
  browser,
}) => {
  test.skip(
    !process.env.E2E_DATA_DIR,
    "needs the stack's data directory (only when globalSetup starts the stack)",
  );
  const ctx = await browser.newContext({ baseURL: process.env.E2E_WEB_URL });
  await watchCsp(ctx, cspViolations);
  const p = await ctx.newPage();
  const email = `reset-${Date.now()}@example.com`;
  await p.goto("/sign-up");
  await p.getByLabel("Name").fill("Reset User");
  await p.getByLabel("Email").fill(email);
  await p.getByLabel("Password", { exact: true }).fill(PASSWORD);
  await p.getByLabel("Repeat password").fill(PASSWORD);
  await p.getByRole("button", { name: "Sign up" }).click();
  await expect(p).toHaveURL(/\/chat$/);
  await p.getByRole("button", { name: "Sign out" }).click();

  await p.getByRole("link", { name: "Forgot your password?" }).click();
  // Client-side navigation: the sign-in form (also with an Email field) may still be there.
  await expect(p.getByRole("heading", { name: "Reset your password" })).toBeVisible();
  await p.getByLabel("Email").fill(email);
  await p.getByRole("button", { name: "Send reset link" }).click();
  await expect(p.getByRole("status")).toContainText("reset link is on its way");

  // The request is logged without its link; the operator issues one from the command line.
  const out = execFileSync("../gateway/bin/admin", ["reset-link", "--email", email], {
    encoding: "utf8",
    env: {
      ...process.env,
      APP_ENV: "development",
      DATABASE_PATH: `${process.env.E2E_DATA_DIR}/gateway.sqlite`,
      WEB_ORIGIN: process.env.E2E_WEB_URL,
      PUBLIC_URL: process.env.E2E_WEB_URL,
      LOG_LEVEL: "silent",
    },
  });
  const resetUrl = out.trim().split("\n").at(-1) ?? "";
  expect(resetUrl).toMatch(/\/api\/auth\/reset-password\//);
  await p.goto(resetUrl);
  await expect(p).toHaveURL(/\/reset-password\?token=/);
  await p.getByLabel("New password", { exact: true }).fill("a brand new password");
  await p.getByLabel("Repeat new password").fill("a brand new password");
  await p.getByRole("button", { name: "Set password" }).click();
  await expect(p.getByRole("status")).toContainText("Password changed");

  await p.goto("/sign-in");
  await p.getByLabel("Email").fill(email);
  await p.getByLabel("Password").fill(PASSWORD);
  await p.getByRole("button", { name: "Sign in" }).click();
  await expect(p.getByRole("form", { name: "Sign in" }).getByRole("alert")).toHaveText(
    "Wrong email or password.",
  );
  await p.getByLabel("Password").fill("a brand new password");
  await p.getByRole("button", { name: "Sign in" }).click();
  await expect(p).toHaveURL(/\/chat$/);
  // Neither the request nor the link's click put the token in the stack's log.
  const token = new URL(resetUrl).pathname.split("/").at(-1) ?? "";
  expect(readFileSync(process.env.E2E_STACK_LOG ?? "", "utf8")).not.toContain(token);
  await ctx.close();
});

/** RFC 6238 TOTP (SHA-1, 6 digits, 30 s) from a base32 secret, as an authenticator app computes it. */
function totp(secret: string, at = Date.now()): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const ch of secret.replace(/=+$/, "").toUpperCase()) {
    bits += alphabet.indexOf(ch).toString(2).padStart(5, "0");
  }
  const key = Buffer.from((bits.match(/.{8}/g) ?? []).map((b) => Number.parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 1000 / 30)));
  const mac = createHmac("sha1", key).update(counter).digest();
  const offset = (mac[mac.length - 1] ?? 0) & 0xf;
  const code = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return String(code).padStart(6, "0");
}

test("two-factor: enable with an authenticator code, then sign-in asks for it", async () => {
  await page.goto("/account");
  const section = page.getByRole("region", { name: "Two-factor authentication" });
  await section.getByLabel("Password").fill(PASSWORD);
  await section.getByRole("button", { name: "Enable two-factor" }).click();
  const secret = await section.getByLabel("Secret").inputValue();
  expect(secret).toMatch(/^[A-Z2-7]+=*$/);
  await section.getByLabel("Code from the app").fill(totp(secret));
  await section.getByRole("button", { name: "Confirm and enable" }).click();
  await expect(section.getByRole("status")).toHaveText("Two-factor authentication is on.");

  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/sign-in/);
  await page.getByLabel("Email").fill(EMAIL);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("heading", { name: "Two-factor authentication" })).toBeVisible();
  await page
    .getByLabel("Authentication code")
    .fill("000000" === totp(secret) ? "111111" : "000000");
  await page.getByRole("button", { name: "Verify" }).click();
  await expect(page.getByRole("alert").filter({ hasText: "code is not valid" })).toBeVisible();
  await page.getByLabel("Authentication code").fill(totp(secret));
  await page.getByRole("button", { name: "Verify" }).click();
  await expect(page).toHaveURL(/\/chat$/);
});

test("phone width and dark theme", async ({ browser }) => {
  const info = test.info();
  const phone = await browser.newContext({
    baseURL: process.env.E2E_WEB_URL,
    viewport: { width: 390, height: 844 },
    colorScheme: "dark",
    storageState: await context.storageState(),
  });
  await watchCsp(phone, cspViolations);
  const p = await phone.newPage();
  await p.goto(conversationUrl || "/chat");
  await expect(p.getByRole("textbox", { name: "Message" })).toBeVisible();
  // The sidebar is a drawer behind the menu button.
  await expect(p.getByRole("complementary", { name: "Sidebar" })).toBeHidden();
  const bg = await p.evaluate(() => getComputedStyle(document.body).backgroundColor);
  expect(bg).toBe("rgb(17, 18, 20)");
  await shot(p, info, "chat-phone-dark");
  await p.getByRole("button", { name: "Menu" }).click();
  await expect(p.getByRole("complementary", { name: "Sidebar" })).toBeVisible();
  await shot(p, info, "menu-phone-dark");
  // No horizontal scrolling at phone width.
  expect(await p.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
  await phone.close();
});
