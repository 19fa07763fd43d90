import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { createInterface } from "node:readline/promises";
import { parseArgs } from "node:util";
import type { Auth, AuthLog } from "./auth/auth.js";
import type { AuthUser } from "./auth/principal.js";
import { setupDatabase } from "./auth/setup.js";
import { MODEL_USAGE, modelCommand } from "./cli-models.js";
import {
  type Config,
  ConfigError,
  type Limits,
  loadConfig,
  SIGNUP_MODES,
  type SignupMode,
} from "./config.js";
import type { Database } from "./db/database.js";
import { HttpError } from "./errors.js";
import type { Role } from "./schemas.js";
import { AdminSetup, setupLinkLine } from "./services/admin-setup.js";
import { ApiKeyService } from "./services/api-keys.js";
import { InvitationService } from "./services/invitations.js";
import { MemoryLimitStore } from "./services/limit-store.js";
import { type LimitOverrides, LimitService } from "./services/limits.js";
import { issueResetLink } from "./services/reset-link.js";
import { UserService } from "./services/users.js";

const USAGE = `usage: gateway/bin/admin <command> [options]
  create-user     --email E [--password P] [--role admin|user] [--name N]
                  (without --password: asked for on a terminal, else the first line of stdin)
  setup-link      (prints a one-time link to create the first admin, while there is none)
  set-role        --email E --role admin|user
  disable         --email E
  enable          --email E
  create-api-key  --email E [--name N] [--expires-in-days D]   (prints the key on its last line)
  reset-password  --email E [--password P]   (prints a new random password unless P is given)
  reset-link      --email E   (prints a one-hour password-reset link for the user to open)
  invite          --email E [--role admin|user]   (mails the invitation when SMTP is set up;
                  prints the link when it was not mailed)
  invitations     (lists the invitations, newest first)
  revoke-invitation --id ID
  approve         --email E   (lets an account that signed up in approval mode in)
  signup-mode     [open|approval|invite|closed]   (prints, or sets, who may create an account)
  set-limits      --email E [--requests-per-minute N] [--tokens-per-day N]
                  [--concurrent-streams N] [--max-tokens N]   (0 = no limit, "default" = role default)
  set-key-limits  --key-id ID [--requests-per-minute N] [--tokens-per-day N]
                  [--concurrent-streams N] [--max-tokens N]   (0 or "default" = none of the key's own;
                  the key's user's limits apply as well)
${MODEL_USAGE}`;

const LIMIT_FLAGS = {
  "requests-per-minute": "requestsPerMinute",
  "tokens-per-day": "tokensPerDay",
  "concurrent-streams": "concurrentStreams",
  "max-tokens": "maxTokens",
} as const;

function limitValue(flag: string, raw: string): number | null {
  if (raw === "default") return null;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    throw new CliError(`--${flag} must be a whole number >= 0 (0 = no limit) or "default"`);
  }
  return n;
}

/** A failure the operator can fix; printed as one line. */
class CliError extends Error {}

type Flags = Partial<Record<keyof typeof LIMIT_FLAGS, string>>;

/** The limit flags given on the command line; at least one is required. */
function limitPatch(values: Flags): Partial<LimitOverrides> {
  const patch: Partial<LimitOverrides> = {};
  for (const [flag, field] of Object.entries(LIMIT_FLAGS)) {
    const raw = values[flag as keyof typeof LIMIT_FLAGS];
    if (raw !== undefined) patch[field] = limitValue(flag, raw);
  }
  if (Object.keys(patch).length === 0) throw new CliError("give at least one limit to set");
  return patch;
}

const show = (n: number) => (n === 0 ? "unlimited" : String(n));
const describeLimits = (l: Limits) =>
  `${show(l.requestsPerMinute)} requests/min, ${show(l.tokensPerDay)} tokens/day, ` +
  `${show(l.concurrentStreams)} concurrent, ${show(l.maxTokens)} max tokens/request`;

const quietLog: AuthLog = {
  error: (obj, msg) => process.stderr.write(`${JSON.stringify({ level: "error", ...obj, msg })}\n`),
  warn: () => undefined,
  debug: () => undefined,
};

function need(value: string | undefined, flag: string): string {
  if (!value) throw new CliError(`missing --${flag}`);
  return value;
}

function role(value: string | undefined): Role {
  if (value !== "admin" && value !== "user") throw new CliError("--role must be admin or user");
  return value;
}

/** How the command line reads a password that is not on it (stdin or a terminal prompt). */
export interface AdminIo {
  readPassword?: () => Promise<string>;
}

/** The options of an admin command (strict: an unknown one is an error). */
function adminOptions(command: string, rest: string[]) {
  try {
    return parseAdminOptions(command, rest);
  } catch (err) {
    // node's own message spans three lines and the first alone does not say what to type.
    const option = /Option '(--[a-z-]+)[^']*' argument is ambiguous/.exec(String(err))?.[1];
    if (option) {
      throw new CliError(
        `a value of ${option} that starts with "-" must be written ${option}=VALUE`,
      );
    }
    throw err;
  }
}

function parseAdminOptions(command: string, rest: string[]) {
  return parseArgs({
    args: rest,
    options: {
      email: { type: "string" },
      password: { type: "string" },
      role: { type: "string" },
      name: { type: "string" },
      "expires-in-days": { type: "string" },
      "requests-per-minute": { type: "string" },
      "tokens-per-day": { type: "string" },
      "concurrent-streams": { type: "string" },
      "max-tokens": { type: "string" },
      "key-id": { type: "string" },
      id: { type: "string" },
      model: { type: "string" },
    },
    strict: true,
    allowPositionals: command === "signup-mode",
  }).values;
}

type AdminOptions = ReturnType<typeof adminOptions>;

/** Runs one admin command; returns the lines to print. Exported for tests. */
export async function runAdmin(
  argv: string[],
  config: Config,
  io: AdminIo = {},
): Promise<string[]> {
  const [command, ...rest] = argv;
  if (!command || command === "help" || command === "--help") return [USAGE];
  const values = adminOptions(command, rest);
  const { db, auth } = await setupDatabase(config, quietLog);
  try {
    const users = new UserService(auth, db);
    const setup = new AdminSetup(auth, db, users);
    const policy = await signupCommand(command, rest, values, auth, users, config);
    if (policy) return policy;
    const fail = (message: string) => new CliError(message);
    const models = await modelCommand(command, values, { db, users, fail });
    if (models) return models;
    if (command === "setup-link") {
      const token = await setup.issue();
      if (!token) throw new CliError("an admin account exists already: no setup link is needed");
      return [setupLinkLine(config.publicUrl, token).trim()];
    }
    if (command === "set-key-limits") {
      const id = need(values["key-id"], "key-id");
      const patch = limitPatch(values);
      const key = await new ApiKeyService(auth).find(id);
      if (!key) throw new CliError(`no API key with id ${id}`);
      const owner = await users.get(key.userId);
      const limits = new LimitService(db, new MemoryLimitStore(), config.limits);
      await limits.setOverrides(key.userId, `key:${key.id}`, patch);
      const { effective } = await limits.describeKey(key.id, key.userId);
      return [
        `limits of API key ${key.id} (${owner.email}): ${describeLimits(effective)}; ` +
          `${owner.email}'s own limits apply as well`,
      ];
    }
    const email = need(values.email, "email").toLowerCase();
    const existing = await users.findByEmail(email);
    if (command === "create-user") {
      if (existing) throw new CliError(`a user with email ${email} already exists`);
      const wanted = values.role === undefined ? undefined : role(values.role);
      const password = values.password ?? (await io.readPassword?.()) ?? "";
      if (!password) throw new CliError("give the password on stdin or with --password");
      const created = await auth.api.signUpEmail({
        body: { email, password, name: values.name ?? email.split("@")[0] ?? email },
      });
      let user = await users.get(created.user.id);
      if (wanted && wanted !== user.role) user = await users.update(user.id, { role: wanted });
      if (user.role === "admin") await setup.revokeAll();
      return [`created ${user.role} ${user.email} (id ${user.id})`];
    }
    if (!existing) throw new CliError(`no user with email ${email}`);
    return await userCommand(command, existing, values, { auth, db, users, setup, config });
  } finally {
    await db.close();
  }
}

/** The commands on one existing user (set-role, disable, create-api-key, reset-*…). */
async function userCommand(
  command: string,
  existing: AuthUser,
  values: AdminOptions,
  d: { auth: Auth; db: Database; users: UserService; setup: AdminSetup; config: Config },
): Promise<string[]> {
  const { auth, db, users, setup, config } = d;
  switch (command) {
    case "set-role": {
      const updated = await users.update(existing.id, { role: role(values.role) });
      if (updated.role === "admin") await setup.revokeAll();
      return [`${updated.email} is now ${updated.role}; their sessions were ended`];
    }
    case "disable":
    case "enable": {
      const updated = await users.update(existing.id, { disabled: command === "disable" });
      return [`${updated.email} is ${updated.disabled ? "disabled" : "enabled"}`];
    }
    case "create-api-key": {
      const days = values["expires-in-days"];
      const expires = days === undefined ? undefined : Number.parseInt(days, 10);
      if (expires !== undefined && !(expires >= 1)) {
        throw new CliError("--expires-in-days must be a positive integer");
      }
      const keys = new ApiKeyService(auth);
      const created = await keys.create(existing.id, values.name ?? "admin cli", expires);
      return [`API key ${created.id} for ${existing.email}:`, created.key];
    }
    case "reset-password": {
      const password = values.password ?? randomBytes(18).toString("base64url");
      await users.setPassword(existing.id, password);
      const ctx = await auth.$context;
      await ctx.internalAdapter.deleteUserSessions(existing.id);
      return values.password
        ? [`password of ${existing.email} reset; their sessions were ended`]
        : [`new password of ${existing.email} (sessions ended):`, password];
    }
    case "reset-link": {
      const link = await issueResetLink(auth, existing.email, config.publicUrl);
      return [`password-reset link for ${existing.email} (valid 1 hour, single use):`, link];
    }
    case "approve": {
      const approved = await users.approve(existing.id);
      return [`${approved.email} is approved`];
    }
    case "set-limits": {
      const patch = limitPatch(values);
      const limits = new LimitService(db, new MemoryLimitStore(), config.limits);
      await limits.setOverrides(existing.id, `user:${existing.id}`, patch);
      const { effective } = await limits.describe(existing.id, existing.role);
      return [`limits of ${existing.email}: ${describeLimits(effective)}`];
    }
    default:
      throw new CliError(`unknown command "${command}"\n${USAGE}`);
  }
}

/**
 * The sign-up policy commands (invite, invitations, revoke-invitation, signup-mode); null for
 * any other command.
 */
async function signupCommand(
  command: string,
  rest: string[],
  values: { email?: string | undefined; role?: string | undefined; id?: string | undefined },
  auth: Auth,
  users: UserService,
  config: Config,
): Promise<string[] | null> {
  switch (command) {
    case "invite": {
      const email = need(values.email, "email").toLowerCase();
      const wanted = values.role === undefined ? "user" : role(values.role);
      const service = new InvitationService(
        auth,
        auth.invitations,
        users,
        auth.mail,
        config.publicUrl,
      );
      const sent = await service.invite(email, wanted, null);
      const until = sent.invitation.expiresAt.toISOString();
      if (sent.mail.sent)
        return [`invitation for ${email} (${wanted}) mailed; valid until ${until}`];
      const why =
        sent.mail.reason === "failed"
          ? `the mail failed: ${sent.mail.error}`
          : "no SMTP_URL is set";
      return [
        `invitation for ${email} (${wanted}) not mailed (${why}); hand over this link, valid once until ${until}:`,
        sent.link ?? "",
      ];
    }
    case "invitations": {
      const list = await auth.invitations.list(500, 0);
      if (list.length === 0) return ["no invitations"];
      return list.map(
        (i) => `${i.id}  ${i.email}  ${i.role}  ${i.status}  expires ${i.expiresAt.toISOString()}`,
      );
    }
    case "revoke-invitation": {
      const revoked = await auth.invitations.revoke(need(values.id, "id"));
      return [`invitation for ${revoked.email} is ${revoked.status}`];
    }
    case "signup-mode": {
      const [wanted] = rest.filter((a) => !a.startsWith("-"));
      if (wanted !== undefined) {
        if (!SIGNUP_MODES.includes(wanted as SignupMode)) {
          throw new CliError(`sign-up mode must be one of ${SIGNUP_MODES.join("|")}`);
        }
        await auth.settings.setSignupMode(wanted as SignupMode);
      }
      const mode = await auth.settings.signupMode();
      return [`sign-up mode: ${mode} (SIGNUP_MODE default: ${auth.settings.signupModeDefault})`];
    }
    default:
      return null;
  }
}

function oneLine(err: unknown): string {
  if (err instanceof CliError || err instanceof ConfigError || err instanceof HttpError) {
    return err.message.split("\n")[0] ?? "";
  }
  const e = err as { message?: string; body?: { message?: string } };
  return e.body?.message ?? e.message ?? String(err);
}

/**
 * The password for create-user: on a terminal asked for twice without echo (on stderr), else
 * the first line of stdin (`printf '%s\n' "$PW" | bin/admin create-user …`), so it never has
 * to be on the command line, where `ps` and the shell history would show it.
 */
async function readPassword(): Promise<string> {
  if (!process.stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return (Buffer.concat(chunks).toString("utf8").split(/\r?\n/)[0] ?? "").trim();
  }
  const ask = async (prompt: string) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
    const muted = rl as unknown as { _writeToOutput: (s: string) => void };
    process.stderr.write(prompt);
    muted._writeToOutput = () => undefined;
    try {
      return await rl.question("");
    } finally {
      rl.close();
      process.stderr.write("\n");
    }
  };
  const first = await ask("Password: ");
  if (first !== (await ask("Repeat password: "))) throw new CliError("the passwords differ");
  return first;
}

async function main(): Promise<void> {
  const first = process.argv[2];
  if (!first || first === "help" || first === "--help" || first === "-h") {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  try {
    const local = resolve(process.cwd(), ".env");
    const repoEnv = resolve(import.meta.dirname, "..", "..", ".env");
    const config = loadConfig(process.env, existsSync(local) ? local : repoEnv);
    const lines = await runAdmin(process.argv.slice(2), config, { readPassword });
    process.stdout.write(`${lines.join("\n")}\n`);
  } catch (err) {
    process.stderr.write(`admin: ${oneLine(err)}\n`);
    process.exitCode = 1;
  }
}

if (process.argv[1] && resolve(process.argv[1]).replace(/\.ts$/, ".js").endsWith("cli.js")) {
  await main();
}
