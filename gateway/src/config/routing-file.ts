import { readFileSync, statSync } from "node:fs";
import { Ajv, type ErrorObject } from "ajv";
import { parse, TomlError } from "smol-toml";
import { ConfigError } from "./errors.js";
import { Secret } from "./redacted.js";
import { locateEntries, type Where } from "./routing-lines.js";
import {
  type ModelEntry,
  type RoutingFile,
  RoutingFileSchema,
  type UpstreamEntry,
} from "./routing-schema.js";
import { readSecretFile } from "./secrets.js";

/** The two kinds of upstream: our llm-server, or any OpenAI-compatible server. */
export type UpstreamKind = "llm-server" | "openai";

const VARIABLE = "GATEWAY_MODELS_FILE";
/** A routing file larger than this is a wrong path, not a list of models. */
const MAX_FILE_BYTES = 1024 * 1024;

/** One upstream of a model's pool, checked and with its key read. */
export interface UpstreamSpec {
  kind: UpstreamKind;
  /** Base URL, no trailing slash, no credentials. */
  url: string;
  model: string;
  weight: number;
  apiKey: Secret | undefined;
  firstTokenTimeoutMs: number | undefined;
}

/** One public model: its names, its pool, the models to try when the whole pool is down. */
export interface ModelSpec {
  name: string;
  aliases: string[];
  /** Canonical names, in the order they are tried. */
  fallbacks: string[];
  kind: "base" | "chat" | undefined;
  upstreams: UpstreamSpec[];
}

/** GATEWAY_MODELS_FILE, validated: the model catalog the gateway routes by. */
export interface RoutingConfig {
  path: string;
  /** The canonical name of the default model. */
  defaultModel: string;
  models: ModelSpec[];
}

const ajv = new Ajv({ useDefaults: true, allErrors: false, strict: false, coerceTypes: false });
const validateFile = ajv.compile<RoutingFile>(RoutingFileSchema);

/** Where the start-up error points: the file, and the line and entry when known. */
class Reporter {
  constructor(
    readonly path: string,
    private readonly text: string,
  ) {}

  fail(where: Where, message: string): never {
    const { line, entry } = locateEntries(this.text, where);
    const at = [line === undefined ? null : `line ${line}`, entry].filter(Boolean).join(", ");
    throw new ConfigError(
      VARIABLE,
      `config error: ${VARIABLE} ${this.path}${at ? ` (${at})` : ""}: ${message}`,
    );
  }
}

/** Reads, parses and checks the routing file; `env` gives the API keys named by `api_key_env`. */
export function loadRoutingFile(path: string, env: NodeJS.ProcessEnv): RoutingConfig {
  let text: string;
  try {
    const size = statSync(path).size;
    if (size > MAX_FILE_BYTES) {
      throw new ConfigError(
        VARIABLE,
        `config error: ${VARIABLE} ${path} is ${size} bytes (at most ${MAX_FILE_BYTES})`,
      );
    }
    text = readFileSync(path, "utf8");
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ConfigError(
      VARIABLE,
      `config error: ${VARIABLE} cannot be read: ${path} (${reason})`,
    );
  }
  return parseRoutingFile(text, path, env);
}

/** See loadRoutingFile; `text` is the file's content. */
export function parseRoutingFile(
  text: string,
  path: string,
  env: NodeJS.ProcessEnv,
): RoutingConfig {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    if (!(err instanceof TomlError)) throw err;
    // smol-toml's message repeats the offending lines after the first; the first says it.
    const first = err.message.split("\n")[0] ?? "invalid TOML";
    throw new ConfigError(
      VARIABLE,
      `config error: ${VARIABLE} ${path} (line ${err.line}, column ${err.column}): ${first}`,
    );
  }
  const report: Reporter = new Reporter(path, text);
  if (!validateFile(doc)) {
    const err = validateFile.errors?.[0];
    const where = whereOf(err?.instancePath ?? "");
    report.fail(where, ajvMessage(err, where));
  }
  return resolveRouting(doc, report, env);
}

/** `/models/1/upstreams/0/weight` → model 1, upstream 0, key `weight`. */
function whereOf(instancePath: string): Where {
  const parts = instancePath.split("/").slice(1);
  const where: Where = {};
  if (parts[0] === "models" && parts[1] !== undefined) {
    where.model = Number(parts[1]);
    if (parts[2] === "upstreams" && parts[3] !== undefined) {
      where.upstream = Number(parts[3]);
      where.key = parts[4];
    } else {
      where.key = parts[2];
    }
  } else {
    where.key = parts[0];
  }
  return where;
}

function ajvMessage(err: ErrorObject | undefined, where: Where): string {
  if (!err) return "is invalid";
  const field = err.instancePath
    .split("/")
    .filter((p) => !/^\d+$/.test(p))
    .at(-1);
  if (err.keyword === "additionalProperties") {
    const extra = (err.params as { additionalProperty?: string }).additionalProperty;
    return `unknown key "${extra}"${field ? ` in ${field}` : ""}`;
  }
  if (err.keyword === "required") {
    return `missing key "${(err.params as { missingProperty?: string }).missingProperty}"`;
  }
  if (err.keyword === "pattern") {
    return `${field ?? "value"} may hold letters, digits and . _ : / @ + - (starting with a letter or digit)`;
  }
  if (err.keyword === "const" || err.keyword === "anyOf") {
    const choices = where.upstream === undefined ? "base|chat" : "llm-server|openai";
    return `${field ?? "value"} must be one of ${choices}`;
  }
  return `${field ?? "the file"} ${err.message ?? "is invalid"}`;
}

/** Names, fallbacks, default and upstreams checked beyond the schema; keys read. */
function resolveRouting(doc: RoutingFile, report: Reporter, env: NodeJS.ProcessEnv): RoutingConfig {
  const canonical = new Map<string, string>();
  for (const [i, m] of doc.models.entries()) {
    if (m.name === "default" || m.aliases.includes("default")) {
      report.fail({ model: i, key: "name" }, `"default" is reserved: it names the default model`);
    }
    for (const name of [m.name, ...m.aliases]) {
      const key = name.toLowerCase();
      const taken = canonical.get(key);
      if (taken !== undefined) {
        report.fail(
          { model: i, key: name === m.name ? "name" : "aliases" },
          `the name "${name}" is used twice (model "${taken}" has it already; names differ by more than case)`,
        );
      }
      canonical.set(key, m.name);
    }
  }
  const models = doc.models.map((m, i) => resolveModel(m, i, canonical, report, env));
  checkFallbackCycles(models, report);
  const defaultModel =
    doc.default === undefined
      ? (models[0] as ModelSpec).name
      : canonical.get(doc.default.toLowerCase());
  if (defaultModel === undefined) {
    report.fail({ key: "default" }, `default names no model ("${doc.default}")`);
  }
  return { path: report.path, defaultModel, models };
}

function resolveModel(
  m: ModelEntry,
  i: number,
  canonical: Map<string, string>,
  report: Reporter,
  env: NodeJS.ProcessEnv,
): ModelSpec {
  const fallbacks = m.fallbacks.map((f) => {
    const name = canonical.get(f.toLowerCase());
    if (name === undefined)
      report.fail({ model: i, key: "fallbacks" }, `fallback "${f}" names no model`);
    if (name === m.name)
      report.fail({ model: i, key: "fallbacks" }, `"${m.name}" falls back to itself`);
    return name;
  });
  const seen = new Set<string>();
  const upstreams = m.upstreams.map((u, j) => {
    const spec = resolveUpstream(u, { model: i, upstream: j }, report, env);
    if (seen.has(spec.url)) {
      report.fail(
        { model: i, upstream: j, key: "url" },
        `${spec.url} is listed twice in this pool`,
      );
    }
    seen.add(spec.url);
    return spec;
  });
  return { name: m.name, aliases: m.aliases, fallbacks, kind: m.kind, upstreams };
}

function resolveUpstream(
  u: UpstreamEntry,
  where: Where,
  report: Reporter,
  env: NodeJS.ProcessEnv,
): UpstreamSpec {
  const url = upstreamUrl(u.url, where, report);
  if (u.kind === "llm-server" && (u.api_key_env !== undefined || u.api_key_file !== undefined)) {
    report.fail(
      { ...where, key: u.api_key_env !== undefined ? "api_key_env" : "api_key_file" },
      "an llm-server upstream is called with LLM_SERVER_TOKEN: api_key_env/api_key_file are for kind openai",
    );
  }
  return {
    kind: u.kind,
    url,
    model: u.model,
    weight: u.weight,
    apiKey: apiKey(u, where, report, env),
    firstTokenTimeoutMs: u.timeout_s === undefined ? undefined : Math.ceil(u.timeout_s * 1000),
  };
}

/** An http(s) base URL without credentials, query or fragment; never echoed with credentials. */
function upstreamUrl(raw: string, where: Where, report: Reporter): string {
  const at = { ...where, key: "url" };
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    // The raw text may hold a key: only its length is told.
    return report.fail(at, `url is not a valid URL (${raw.length} characters)`);
  }
  if (url.username !== "" || url.password !== "") {
    url.username = "";
    url.password = "";
    report.fail(
      at,
      `url ${url.origin} carries credentials: give the key with api_key_env or api_key_file`,
    );
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    report.fail(at, `url must use http or https (got ${url.protocol})`);
  }
  if (url.search !== "" || url.hash !== "") {
    report.fail(at, `url ${url.origin}${url.pathname} must have no query or fragment`);
  }
  return `${url.origin}${url.pathname}`.replace(/\/+$/, "");
}

/** An OpenAI upstream's key: from the named variable or the secret file; none when neither. */
function apiKey(
  u: UpstreamEntry,
  where: Where,
  report: Reporter,
  env: NodeJS.ProcessEnv,
): Secret | undefined {
  if (u.api_key_env !== undefined && u.api_key_file !== undefined) {
    report.fail({ ...where, key: "api_key_file" }, "set api_key_env or api_key_file, not both");
  }
  let value: string | undefined;
  if (u.api_key_env !== undefined) {
    value = env[u.api_key_env]?.trim();
    if (!value)
      report.fail(
        { ...where, key: "api_key_env" },
        `set ${u.api_key_env} (the upstream's API key)`,
      );
  } else if (u.api_key_file !== undefined) {
    try {
      value = readSecretFile("api_key_file", u.api_key_file);
    } catch (err) {
      report.fail(
        { ...where, key: "api_key_file" },
        (err as Error).message.replace(/^config error: /, ""),
      );
    }
  }
  if (value === undefined) return undefined;
  // A header cannot carry control characters (and a key never has them).
  if ([...value].some((ch) => ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f)) {
    report.fail(
      { ...where, key: u.api_key_env ? "api_key_env" : "api_key_file" },
      "the API key holds control characters",
    );
  }
  return new Secret(value);
}

/** Refuses a file whose fallbacks loop (a → b → a): a request could bounce between them forever. */
function checkFallbackCycles(models: ModelSpec[], report: Reporter): void {
  const byName = new Map(models.map((m) => [m.name, m]));
  const done = new Set<string>();
  const visit = (name: string, path: string[]): void => {
    const cycleAt = path.indexOf(name);
    if (cycleAt >= 0) {
      const first = models.findIndex((m) => m.name === name);
      report.fail(
        { model: first, key: "fallbacks" },
        `fallback cycle: ${[...path.slice(cycleAt), name].join(" → ")}`,
      );
    }
    if (done.has(name)) return;
    for (const f of byName.get(name)?.fallbacks ?? []) visit(f, [...path, name]);
    done.add(name);
  };
  for (const m of models) visit(m.name, []);
}

/**
 * The fallback chain of `name`: the model, then its fallbacks in order, each followed by
 * its own (depth first, every model once).
 */
export function fallbackChain(config: RoutingConfig, name: string): string[] {
  const byName = new Map(config.models.map((m) => [m.name, m]));
  const chain: string[] = [];
  const walk = (n: string) => {
    if (chain.includes(n)) return;
    chain.push(n);
    for (const f of byName.get(n)?.fallbacks ?? []) walk(f);
  };
  walk(name);
  return chain;
}
