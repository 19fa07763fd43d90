/**
 * Two models behind the gateway, on a stack of this file's own: a routing file
 * (GATEWAY_MODELS_FILE) gives two public names, both served by the stack's embedded model
 * (through a relay: the file names the upstream's URL before the stack picks its port).
 *
 * A user picks a model, sends, sees that model on the answer, and finds the choice kept
 * after a reload and in a new chat; an admin sees both models on the Models page (with their
 * upstream's prefix cache) and denies one to role user: a message the user sends to it
 * meanwhile is refused and kept in the box, and the model leaves the user's picker (the
 * default takes over, with a notice).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import AxeBuilder from "@axe-core/playwright";
import { type Browser, type BrowserContext, expect, type Page, test } from "@playwright/test";
import { expectNoCspViolations, watchCsp } from "./csp";
import { type Running, startOwnStack } from "./own-stack";
import { type Relay, startRelay } from "./relay";
import type { StackUrls } from "./stack";

test.describe.configure({ mode: "serial", timeout: 180_000 });
// The model shares the CPU with everything else running on the machine: allow it time.
const MODEL_TIMEOUT = 90_000;
/** What the stack's llm-server calls its embedded model (LLM_MODEL_ALIAS). */
const UPSTREAM_MODEL = "gemma-e2e";
/** The public names: the first is the default. */
const [FIRST, SECOND] = ["gemma", "gemma-b"] as const;
const ADMIN = { name: "Mo Admin", email: "mo@example.org", password: "models admin pass 1" };
const USER = { name: "Uma User", email: "uma@example.org", password: "models user pass 1" };

let relay: Relay;
let dir: string;
let stack: Running<StackUrls>;
let admin: Page;
let user: Page;
const contexts: BrowserContext[] = [];
const cspViolations: string[] = [];

/** The routing file: both public names go to the embedded model, through the relay. */
function routingFile(upstreamUrl: string): string {
  return [FIRST, SECOND]
    .map(
      (name) =>
        // The embedded model has no chat template: a base model (the file says so).
        `[[models]]\nname = "${name}"\nkind = "base"\n\n[[models.upstreams]]\nkind = "llm-server"\n` +
        `url = "${upstreamUrl}"\nmodel = "${UPSTREAM_MODEL}"\n`,
    )
    .join("\n");
}

async function newPage(browser: Browser): Promise<Page> {
  const context = await browser.newContext({ baseURL: stack.ready.web });
  await watchCsp(context, cspViolations);
  contexts.push(context);
  return context.newPage();
}

/** Checks the page with axe (WCAG 2 A/AA rules). */
async function accessible(page: Page) {
  const { violations } = await new AxeBuilder({ page })
    .withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"])
    .analyze();
  expect(violations.map((v) => `${v.id}: ${v.help}`)).toEqual([]);
}

/** A model's card on the admin Models page. */
const modelCard = (page: Page, name: string) =>
  page.getByTestId("admin-model").filter({
    has: page.getByRole("form", { name: `Add an access rule for ${name}`, exact: true }),
  });

/** Sends `text` from the composer and waits for the answer to end; returns the answer. */
async function send(page: Page, text: string) {
  const before = await page.getByTestId("msg-assistant").count();
  const box = page.getByRole("textbox", { name: "Message" });
  await box.fill(text);
  await box.press("Enter");
  const answer = page.getByTestId("msg-assistant").nth(before);
  await expect(answer.getByRole("button", { name: "Regenerate" })).toBeVisible({
    timeout: MODEL_TIMEOUT,
  });
  return answer;
}

test.beforeAll(async () => {
  test.setTimeout(360_000);
  relay = await startRelay();
  dir = mkdtempSync(path.join(os.tmpdir(), "e2e-models-"));
  const file = path.join(dir, "models.toml");
  writeFileSync(file, routingFile(relay.url));
  stack = await startOwnStack([], {
    GATEWAY_MODELS_FILE: file,
    LLM_MODEL_ALIAS: UPSTREAM_MODEL,
    SIGNUP_MODE: "open",
  });
  relay.setTarget(stack.ready.llm);
});

test.afterAll(async () => {
  for (const c of contexts) await c.close();
  await stack?.stop();
  await relay?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test.afterEach(() => expectNoCspViolations(cspViolations));

test("the admin's Models page lists both models with their upstream", async ({ browser }) => {
  let link = "";
  await expect
    .poll(() => {
      link = /SETUP .*?(https?:\/\/\S+\/setup\?token=[\w-]+)/.exec(stack.output())?.[1] ?? "";
      return link;
    })
    .not.toBe("");
  admin = await newPage(browser);
  const setup = new URL(link);
  await admin.goto(setup.pathname + setup.search);
  await admin.getByLabel("Name").fill(ADMIN.name);
  await admin.getByLabel("Email").fill(ADMIN.email);
  await admin.getByLabel("Password", { exact: true }).fill(ADMIN.password);
  await admin.getByLabel("Repeat password").fill(ADMIN.password);
  await admin.getByRole("button", { name: "Create admin account" }).click();
  await expect(admin).toHaveURL(/\/admin$/);

  await admin
    .getByRole("navigation", { name: "Admin pages" })
    .getByRole("link", { name: "Models" })
    .click();
  await expect(admin.getByRole("heading", { level: 1, name: "Models" })).toBeVisible();
  await expect(admin.getByTestId("admin-model")).toHaveCount(2);
  for (const name of [FIRST, SECOND]) {
    const card = modelCard(admin, name);
    const upstream = card.getByTestId("model-upstream");
    await expect(upstream).toHaveCount(1);
    await expect(upstream.getByRole("cell").nth(1)).toHaveText(relay.url);
    await expect(upstream.getByRole("cell").nth(2)).toHaveText(UPSTREAM_MODEL);
    // The gateway checks the upstream's health: up once the relay reaches the llm-server
    // (the page asks again every 10 s).
    await expect(card.getByTestId("upstream-state")).toHaveText("up", { timeout: 60_000 });
    // The llm-server reports the model's prefix cache: host memory held of its 1 GiB bound.
    const cache = card.getByTestId("prefix-cache");
    await expect(cache.getByRole("cell").nth(0)).toHaveText(relay.url);
    await expect(cache.getByRole("cell").nth(1)).toHaveText(/^[\d.,]+ \/ 1,024 MiB$/);
    await expect(card.getByText(`No rule: everyone may use ${name}.`)).toBeVisible();
  }
  await accessible(admin);
});

test("a user picks a model, sees it on the answer, and finds the choice kept", async ({
  browser,
}) => {
  user = await newPage(browser);
  await user.goto("/sign-up");
  await user.getByLabel("Name").fill(USER.name);
  await user.getByLabel("Email").fill(USER.email);
  await user.getByLabel("Password", { exact: true }).fill(USER.password);
  await user.getByLabel("Repeat password").fill(USER.password);
  await user.getByRole("button", { name: "Sign up" }).click();
  await expect(user).toHaveURL(/\/chat$/);

  const picker = user.getByRole("combobox", { name: "Model" });
  await expect(picker).toHaveValue(FIRST);
  // The embedded model has no chat template: both are labelled base models.
  await expect(picker.locator("option")).toHaveText([
    new RegExp(`^${FIRST} · base model`),
    new RegExp(`^${SECOND} · base model`),
  ]);
  await expect(user.getByTestId("base-model-note")).toContainText("continues the text");
  await picker.selectOption(SECOND);
  const panel = user.locator("details.params");
  await panel.locator("summary").click();
  await user.getByLabel("Max tokens").fill("8");
  await panel.locator("summary").click();

  const answer = await send(user, "Write one sentence about the sea.");
  await expect(answer.getByTestId("answer-model")).toHaveText(`Answered by ${SECOND}`);
  await expect(user).toHaveURL(/\/chat\/[^/]+$/);
  await accessible(user);

  // The conversation keeps its model, and so does a new chat.
  await user.reload();
  await expect(user.getByTestId("answer-model")).toHaveText(`Answered by ${SECOND}`);
  await expect(user.getByRole("combobox", { name: "Model" })).toHaveValue(SECOND);
  await user.getByRole("link", { name: "New chat" }).click();
  await expect(user).toHaveURL(/\/chat$/);
  await expect(user.getByRole("combobox", { name: "Model" })).toHaveValue(SECOND);
});

test("a model denied to role user leaves the user's picker; a message sent to it is kept", async () => {
  // The user's page got its list before the change: its next refresh (every 30 s) waits
  // until the message was sent, so the send meets the gateway's refusal, not a stale page.
  let release = () => {};
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  await user.route("**/api/models", async (route) => {
    await held;
    await route.continue();
  });
  const card = modelCard(admin, SECOND);
  const form = card.getByRole("form", { name: `Add an access rule for ${SECOND}` });
  await form.getByLabel("For").selectOption("role:user");
  await form.getByLabel("Access").selectOption("deny");
  await form.getByRole("button", { name: "Save rule" }).click();
  await expect(card.getByRole("status")).toHaveText(`${SECOND}: denied to role user.`);
  await expect(card.getByRole("table", { name: `Access rules of ${SECOND}` })).toContainText(
    "denied",
  );

  // The user's page still offers it (not reloaded): sending is refused, the text stays.
  await expect(user.getByRole("combobox", { name: "Model" })).toHaveValue(SECOND);
  const box = user.getByRole("textbox", { name: "Message" });
  await box.fill("Are you still there?");
  await box.press("Enter");
  const alert = user.getByRole("alert").filter({ hasText: "Model not available" });
  await expect(alert).toContainText("Model not available");
  await expect(alert).toContainText(SECOND);
  await expect(box).toHaveValue("Are you still there?");
  await expect(user.getByTestId("msg-user")).toHaveCount(0);
  release(); // the route stays, letting every later request through
  // The list, asked again, no longer has it: the default model takes over, and says so.
  await expect(user.getByRole("combobox", { name: "Model" })).toHaveCount(0);
  await expect(user.getByTestId("model-name")).toHaveText(FIRST);
  await expect(user.getByRole("status").filter({ hasText: "no longer available" })).toHaveText(
    `${SECOND} is no longer available to you: using ${FIRST} instead.`,
  );

  const answer = await send(user, "Are you still there?");
  await expect(answer.getByTestId("answer-model")).toHaveText(`Answered by ${FIRST}`);
  await user.reload();
  await expect(user.getByTestId("model-name")).toHaveText(FIRST);
  await expect(user.getByText("no longer available")).toHaveCount(0);
});
