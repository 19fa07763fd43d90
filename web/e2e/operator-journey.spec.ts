/**
 * An operator's first hour, through a stack of its own started from a
 * fresh data directory (`stack.py serve --ephemeral`) with `PUBLIC_URL` at a non-loopback
 * address of this machine, and a real SMTP server (npm `smtp-server`) in this process:
 * the operator opens the setup link the gateway prints → becomes admin → sets sign-up to
 * invite-only → invites a colleague → the colleague's mail arrives → the colleague follows
 * it, signs up, chats, and resets the password through the mail.
 */
import { type ChildProcess, spawn } from "node:child_process";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import type { Page } from "@playwright/test";
import { simpleParser } from "mailparser";
import { SMTPServer } from "smtp-server";
import { expect, test } from "./csp";
import { parseReadyLine, type StackUrls } from "./stack";

const MODEL_TIMEOUT = 90_000;
const ADMIN = { name: "Olga Operator", email: "olga@example.org", password: "operator pass 1" };
const MATE = { name: "Colin Colleague", email: "colin@example.org", password: "colleague pass 1" };
const NEW_PASSWORD = "colleague pass 2";

interface Mail {
  to: string[];
  subject: string;
  text: string;
  html: string;
}

/** The machine's first non-loopback IPv4 address (eth0 first), or undefined. */
function machineAddress(): string | undefined {
  const interfaces = os.networkInterfaces();
  const names = Object.keys(interfaces).sort((a, b) => (a === "eth0" ? -1 : b === "eth0" ? 1 : 0));
  for (const name of names) {
    for (const a of interfaces[name] ?? []) {
      if (a.family === "IPv4" && !a.internal) return a.address;
    }
  }
  return undefined;
}

/** An SMTP server on 127.0.0.1 (where the gateway sends from) keeping what it receives. */
async function startSmtp(): Promise<{ inbox: Mail[]; port: number; close: () => Promise<void> }> {
  const inbox: Mail[] = [];
  const server = new SMTPServer({
    disabledCommands: ["STARTTLS", "AUTH"],
    authOptional: true,
    logger: false,
    onData(stream, session, callback) {
      simpleParser(stream).then(
        (m) => {
          inbox.push({
            to: session.envelope.rcptTo.map((r) => r.address),
            subject: m.subject ?? "",
            text: m.text ?? "",
            html: typeof m.html === "string" ? m.html : "",
          });
          callback();
        },
        (err: Error) => callback(err),
      );
    },
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    inbox,
    port: (server.server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The link of the first mail to `to` whose subject matches, once it has arrived. */
async function linkFromMail(inbox: Mail[], to: string, subject: RegExp): Promise<string> {
  let mail: Mail | undefined;
  await expect
    .poll(
      () => {
        mail = inbox.find((m) => m.to.includes(to) && subject.test(m.subject));
        return mail !== undefined;
      },
      { timeout: 30_000, message: `a mail to ${to} (${subject})` },
    )
    .toBe(true);
  const found = mail as Mail;
  const link = /https?:\/\/\S+/.exec(found.text)?.[0] ?? "";
  expect(found.html).toContain(link.replace(/&/g, "&#38;"));
  return link;
}

/** A stack of this test's own: fresh data directory, PUBLIC_URL at `host`, mail to `smtpPort`. */
async function startOwnStack(
  host: string,
  smtpPort: number,
): Promise<{ urls: StackUrls; output: () => string; stop: () => Promise<void> }> {
  let output = "";
  const child: ChildProcess = spawn(
    "python3",
    ["../scripts/stack.py", "serve", "--ephemeral", "--public-host", host, "--web-host", host],
    {
      cwd: path.resolve(__dirname, ".."),
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        NEXT_TELEMETRY_DISABLED: "1",
        SMTP_URL: `smtp://127.0.0.1:${smtpPort}`,
        MAIL_FROM: "LLM stack <llm@example.org>",
        SIGNUP_MODE: "open",
      },
    },
  );
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    await exited;
    clearTimeout(timer);
  };
  const urls = await new Promise<StackUrls>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no STACK_READY:\n${output}`)), 300_000);
    let buffer = "";
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      buffer += chunk;
      output += chunk;
      for (const line of buffer.split("\n").slice(0, -1)) {
        const ready = parseReadyLine(line);
        if (ready) {
          clearTimeout(timer);
          resolve(ready);
        }
      }
      buffer = buffer.slice(buffer.lastIndexOf("\n") + 1);
    });
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      output += chunk;
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the stack exited (${code}):\n${output.slice(-4000)}`));
    });
  });
  return { urls, output: () => output, stop };
}

/** Clicks Sign in; waits out the gateway's per-IP sign-in limit once if it answers 429. */
async function signIn(page: Page, email: string, password: string): Promise<number> {
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  const attempt = async () => {
    const answer = page.waitForResponse((r) => r.url().includes("/api/auth/sign-in/email"));
    await page.getByRole("button", { name: "Sign in" }).click();
    return answer;
  };
  let answer = await attempt();
  if (answer.status() === 429) {
    await page.waitForTimeout(Number(answer.headers()["retry-after"] ?? "60") * 1000 + 500);
    answer = await attempt();
  }
  return answer.status();
}

test.describe("an operator's first hour", () => {
  test.describe.configure({ mode: "serial", timeout: 600_000 });

  const address = machineAddress();
  if (!address) {
    const why =
      "no non-loopback IPv4 address on this machine: the journey needs one for PUBLIC_URL";
    if (process.env.CI === "true") throw new Error(why);
    console.warn(`\n*** SKIPPING the operator journey: ${why} ***\n`);
  }

  test("setup link → admin → invite-only → mailed invitation → colleague chats and resets", async ({
    browser,
  }) => {
    test.skip(!address, "no non-loopback IPv4 address (fails under CI=true)");
    const host = address as string;
    const smtp = await startSmtp();
    const stack = await startOwnStack(host, smtp.port);
    try {
      const publicOrigin = new URL(stack.urls.web).port
        ? `http://${host}:${new URL(stack.urls.web).port}`
        : `http://${host}`;

      // 1. The operator opens the setup link printed at start: it names the public address.
      let setupLink = "";
      await expect
        .poll(() => {
          setupLink =
            /SETUP .*?(https?:\/\/\S+\/setup\?token=[\w-]+)/.exec(stack.output())?.[1] ?? "";
          return setupLink;
        })
        .not.toBe("");
      expect(setupLink.startsWith(`${publicOrigin}/setup?token=`)).toBe(true);

      const operator = await browser.newContext();
      const page = await operator.newPage();
      await page.goto(setupLink);
      await expect(page.getByRole("heading", { name: "Create the admin account" })).toBeVisible();
      await page.getByLabel("Name").fill(ADMIN.name);
      await page.getByLabel("Email").fill(ADMIN.email);
      await page.getByLabel("Password", { exact: true }).fill(ADMIN.password);
      await page.getByLabel("Repeat password").fill(ADMIN.password);
      await page.getByRole("button", { name: "Create admin account" }).click();
      await expect(page).toHaveURL(`${publicOrigin}/admin`);

      // 2. Sign-up by invitation only, then invite the colleague.
      const section = page.getByRole("region", { name: "Sign-up and invitations" });
      await section.getByLabel("Who can create an account").selectOption("invite");
      await expect(section.getByRole("status")).toHaveText("Sign-up is now: invite.");
      await section.getByLabel("Email to invite").fill(MATE.email);
      await section.getByRole("button", { name: "Invite" }).click();
      await expect(section.getByRole("status")).toHaveText(`Invitation mailed to ${MATE.email}.`);
      await expect(section.getByRole("cell", { name: MATE.email, exact: true })).toBeVisible();

      // 3. The mail arrives; its link leads to the public address.
      const invitation = await linkFromMail(smtp.inbox, MATE.email, /invited/);
      expect(invitation.startsWith(`${publicOrigin}/invite?token=`)).toBe(true);

      // 4. The colleague: plain sign-up is refused, the invitation works.
      const mate = await browser.newContext();
      const p = await mate.newPage();
      await p.goto(`${publicOrigin}/sign-up`);
      await p.getByLabel("Name").fill(MATE.name);
      await p.getByLabel("Email").fill(MATE.email);
      await p.getByLabel("Password", { exact: true }).fill(MATE.password);
      await p.getByLabel("Repeat password").fill(MATE.password);
      await p.getByRole("button", { name: "Sign up" }).click();
      await expect(
        p.getByRole("form", { name: "Create an account" }).getByRole("alert"),
      ).toContainText("Sign-up needs an invitation");

      await p.goto(invitation);
      await expect(p.getByText(`Create your account for ${MATE.email}.`)).toBeVisible();
      await p.getByLabel("Name").fill(MATE.name);
      await p.getByLabel("Password", { exact: true }).fill(MATE.password);
      await p.getByLabel("Repeat password").fill(MATE.password);
      await p.getByRole("button", { name: "Create account" }).click();
      await expect(p).toHaveURL(`${publicOrigin}/chat`);

      // 5. Chats with the model (a short answer: the machine may be busy).
      const panel = p.locator("details.params");
      await panel.locator("summary").click();
      await p.getByLabel("Max tokens").fill("16");
      await panel.locator("summary").click();
      const box = p.getByRole("textbox", { name: "Message" });
      await box.fill("Write one sentence about the sea.");
      await box.press("Enter");
      await expect(p).toHaveURL(/\/chat\/[^/]+$/);
      // The base model may answer nothing: its reply can open with the next "User:" turn,
      // which ends it (1 in 40 answers to this message, measured). Ask again, as the colleague
      // would, up to three times; one of them must carry text.
      let text = "";
      for (let attempt = 1; attempt <= 3 && text === ""; attempt++) {
        if (attempt > 1) {
          await box.fill("Write one sentence about the sea.");
          await box.press("Enter");
        }
        const answers = p.getByTestId("msg-assistant");
        await expect(answers).toHaveCount(attempt, { timeout: MODEL_TIMEOUT });
        await expect(p.getByRole("button", { name: "Regenerate" })).toBeVisible({
          timeout: MODEL_TIMEOUT,
        });
        const markdown = answers.last().locator(".markdown");
        text = (await markdown.count()) ? ((await markdown.textContent()) ?? "").trim() : "";
      }
      expect(text).not.toBe("");

      // 6. Forgets the password: the reset mail arrives and its link works.
      await p.getByRole("button", { name: "Sign out" }).click();
      await expect(p).toHaveURL(/\/sign-in/);
      await p.getByRole("link", { name: "Forgot your password?" }).click();
      await expect(p.getByRole("heading", { name: "Reset your password" })).toBeVisible();
      await p.getByLabel("Email").fill(MATE.email);
      await p.getByRole("button", { name: "Send reset link" }).click();
      await expect(p.getByRole("status")).toContainText("reset link is on its way");
      const reset = await linkFromMail(smtp.inbox, MATE.email, /Reset your/);
      expect(reset.startsWith(`${publicOrigin}/api/auth/reset-password/`)).toBe(true);
      await p.goto(reset);
      await expect(p).toHaveURL(/\/reset-password\?token=/);
      await p.getByLabel("New password", { exact: true }).fill(NEW_PASSWORD);
      await p.getByLabel("Repeat new password").fill(NEW_PASSWORD);
      await p.getByRole("button", { name: "Set password" }).click();
      await expect(p.getByRole("status")).toContainText("Password changed");

      await p.goto(`${publicOrigin}/sign-in`);
      expect(await signIn(p, MATE.email, NEW_PASSWORD)).toBe(200);
      await expect(p).toHaveURL(`${publicOrigin}/chat`);

      // No token of the mailed links in the stack's output (every service's log); the setup
      // link is printed there on purpose (the operator's channel).
      const tokens = [
        new URL(invitation).searchParams.get("token") ?? "",
        new URL(reset).pathname.split("/").at(-1) ?? "",
      ];
      for (const token of tokens) {
        expect(token.length).toBeGreaterThan(10);
        expect(stack.output()).not.toContain(token);
      }
      await mate.close();
      await operator.close();
    } finally {
      await stack.stop();
      await smtp.close();
    }
  });
});
