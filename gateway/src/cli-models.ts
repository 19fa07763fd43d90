import type { Database } from "./db/database.js";
import type { Role } from "./schemas.js";
import { ModelAccess } from "./services/model-access.js";
import {
  MAX_MODEL_NAME,
  MAX_MODEL_TOKENS_PER_DAY,
  ModelAccessStore,
  type ModelEntry,
  type ModelSubject,
} from "./services/model-access-store.js";
import type { UserService } from "./services/users.js";

/** The admin commands on model access and per-model limits, for bin/admin's usage text. */
export const MODEL_USAGE = `  allow-model     --model M (--role admin|user | --email E)   (a user's rule beats their role's)
  deny-model      --model M (--role admin|user | --email E)   (a model without rules is open to all)
  set-model-limit --model M (--role admin|user | --email E) --tokens-per-day N
                  (each user's daily tokens of that model, on top of their total; 0 = none)
  remove-model-rule  --model M (--role R | --email E)
  remove-model-limit --model M (--role R | --email E)
  model-access    (lists the model rules and limits)`;

const COMMANDS = new Set([
  "allow-model",
  "deny-model",
  "set-model-limit",
  "remove-model-rule",
  "remove-model-limit",
  "model-access",
]);

/** The options these commands read (bin/admin parses them). */
export interface ModelOptions {
  model?: string | undefined;
  role?: string | undefined;
  email?: string | undefined;
  "tokens-per-day"?: string | undefined;
}

/** What the commands need: the database, and the users to find one by email. */
export interface ModelCommandDeps {
  db: Database;
  users: UserService;
  /** The error the operator sees (one line). */
  fail: (message: string) => Error;
}

/** Runs a model command; null when `command` is not one. */
export async function modelCommand(
  command: string,
  values: ModelOptions,
  d: ModelCommandDeps,
): Promise<string[] | null> {
  if (!COMMANDS.has(command)) return null;
  // Written straight to the database: running gateways see it within AUTH_CACHE_TTL_MS.
  const access = new ModelAccess(new ModelAccessStore(d.db), 0);
  if (command === "model-access") return listLines(access);
  const model = modelName(values.model, d.fail);
  const { subject, who } = await subjectOf(values, d);
  switch (command) {
    case "allow-model":
    case "deny-model": {
      const allow = command === "allow-model";
      await access.setRule(model, subject, allow);
      return [`${who} ${allow ? "may" : "may not"} use model ${model}`];
    }
    case "set-model-limit": {
      const tokens = tokensPerDay(values["tokens-per-day"], d.fail);
      await access.setLimit(model, subject, tokens);
      const amount = tokens === 0 ? "no limit of" : `${tokens} tokens/day of`;
      return [`${who}: ${amount} model ${model} (per user, on top of the total quota)`];
    }
    default: {
      const kind = command === "remove-model-rule" ? "rule" : "limit";
      const removed = await access.store.deleteFor(kind, model, subject);
      if (!removed) throw d.fail(`${who} has no ${kind} for model ${model}`);
      return [`removed the ${kind} of ${who} for model ${model}`];
    }
  }
}

function modelName(raw: string | undefined, fail: (m: string) => Error): string {
  const model = raw?.trim() ?? "";
  if (!model) throw fail("missing --model");
  if (model.length > MAX_MODEL_NAME) {
    throw fail(`--model is at most ${MAX_MODEL_NAME} characters`);
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it finds
  if (/[\u0000-\u001f\u007f]/.test(model)) throw fail("--model may not hold control characters");
  return model;
}

function tokensPerDay(raw: string | undefined, fail: (m: string) => Error): number {
  if (raw === undefined) throw fail("missing --tokens-per-day");
  const n = Number(raw);
  if (raw.trim() === "" || !Number.isInteger(n) || n < 0 || n > MAX_MODEL_TOKENS_PER_DAY) {
    throw fail(
      `--tokens-per-day must be a whole number from 0 (no limit) to ${MAX_MODEL_TOKENS_PER_DAY}`,
    );
  }
  return n;
}

/** `--role` or `--email` (exactly one), as a rule's subject and how to name it. */
async function subjectOf(
  values: ModelOptions,
  d: ModelCommandDeps,
): Promise<{ subject: ModelSubject; who: string }> {
  const { role, email } = values;
  if (role !== undefined && email !== undefined) throw d.fail("give --role or --email, not both");
  if (role !== undefined) {
    if (role !== "admin" && role !== "user") throw d.fail("--role must be admin or user");
    return { subject: { role: role as Role }, who: `role ${role}` };
  }
  if (email === undefined) throw d.fail("give --role or --email");
  const user = await d.users.findByEmail(email.trim());
  if (!user) throw d.fail(`no user with email ${email.trim().toLowerCase()}`);
  return { subject: { userId: user.id }, who: user.email };
}

async function listLines(access: ModelAccess): Promise<string[]> {
  const { rules, limits } = await access.list();
  const whom = (e: ModelEntry<unknown>) => (e.role ? `role ${e.role}` : (e.email ?? e.userId));
  const lines = [
    ...rules.map((r) => `${r.id}  ${r.model}  ${whom(r)}  ${r.value ? "allow" : "deny"}`),
    ...limits.map((l) => `${l.id}  ${l.model}  ${whom(l)}  ${l.value} tokens/day`),
  ];
  return lines.length ? lines : ["no model rules or limits: every model is open to everyone"];
}
