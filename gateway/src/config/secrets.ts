import { closeSync, constants, fstatSync, openSync, readFileSync, realpathSync } from "node:fs";
import { ConfigError } from "./errors.js";

const PLACEHOLDERS = new Set([
  "",
  "changeme",
  "change-me",
  "change_me",
  "change me",
  "changethis",
  "change-this",
  "replaceme",
  "replace-me",
  "replace_me",
  "placeholder",
  "secret",
  "password",
  "token",
  "todo",
  "tbd",
  "xxx",
  "dummy",
  "example",
  "your-secret",
  "your-secret-here",
  "your-token",
  "your-token-here",
]);

/** True when the value looks like a template value rather than a real secret. */
export function isPlaceholder(value: string | undefined): boolean {
  if (value === undefined) return true;
  const v = value.trim().toLowerCase();
  if (PLACEHOLDERS.has(v)) return true;
  if (/^<.*>$/.test(v) || /^\$\{.*\}$/.test(v)) return true;
  if (/^x+$/.test(v)) return true;
  return v.includes("changeme") || v.includes("change-me") || v.includes("placeholder");
}

export interface SecretSpec {
  name: "AUTH_SECRET" | "LLM_SERVER_TOKEN";
  minLength: number;
  hint: string;
}

export const SECRETS: SecretSpec[] = [
  { name: "AUTH_SECRET", minLength: 32, hint: "a random string of at least 32 characters" },
  {
    name: "LLM_SERVER_TOKEN",
    minLength: 16,
    hint: "the bearer token the llm-server expects, at least 16 characters",
  },
];

/**
 * Variables holding a secret. Each may be given instead as `NAME_FILE`, the path of a file
 * holding it (Docker and Kubernetes secrets, a Vault agent's rendered file).
 */
export const FILE_SECRETS = [
  "AUTH_SECRET",
  "LLM_SERVER_TOKEN",
  "METRICS_TOKEN",
  "DATABASE_URL",
  "REDIS_URL",
  "OIDC_CLIENT_SECRET",
  "GITHUB_CLIENT_SECRET",
  "GOOGLE_CLIENT_SECRET",
  "SMTP_URL",
  "SMTP_PASSWORD",
] as const;

/** A secret file larger than this is a wrong path (a log, an image), not a secret. */
export const MAX_SECRET_FILE_BYTES = 64 * 1024;

/**
 * Decodes a mount point as /proc/self/mountinfo writes it (space, tab, newline and backslash
 * as three-digit octal escapes).
 */
function unescapeMountPath(raw: string): string {
  return raw.replace(/\\([0-7]{3})/g, (_, octal: string) =>
    String.fromCharCode(Number.parseInt(octal, 8)),
  );
}

/**
 * True when `realPath` (already resolved, no symlinks) lies on a read-only mount according to
 * `mountinfo` (the text of /proc/self/mountinfo): the mount with the longest matching mount
 * point (the last one listed wins a tie: it is mounted on top) has `ro` in its own options or
 * in its filesystem's.
 */
export function onReadOnlyMount(realPath: string, mountinfo: string): boolean {
  let best: { length: number; readOnly: boolean } | undefined;
  for (const line of mountinfo.split("\n")) {
    const [left, right] = line.split(" - ");
    if (left === undefined || right === undefined) continue;
    const fields = left.split(" ");
    const mountPoint = fields[4];
    const options = fields[5];
    if (mountPoint === undefined || options === undefined) continue;
    const point = unescapeMountPath(mountPoint);
    const inside =
      realPath === point ||
      point === "/" ||
      realPath.startsWith(point.endsWith("/") ? point : `${point}/`);
    if (!inside || (best !== undefined && point.length < best.length)) continue;
    const superOptions = right.split(" ")[2] ?? "";
    const readOnly = [options, superOptions].some((o) => o.split(",").includes("ro"));
    best = { length: point.length, readOnly };
  }
  return best?.readOnly ?? false;
}

/** Reads /proc/self/mountinfo (Linux); elsewhere no mount counts as read-only. */
function procMountinfo(): string {
  try {
    return readFileSync("/proc/self/mountinfo", "utf8");
  } catch {
    return "";
  }
}

function octal(mode: number): string {
  return `0${(mode & 0o777).toString(8).padStart(3, "0")}`;
}

/**
 * Reads the secret file named by `fileVar`. Refused, with a one-line message naming the
 * variable and never the contents: a path that is not a regular file, a file writable by
 * group or others, a file readable by every user unless it sits on a read-only mount (the way
 * Docker, Compose and Kubernetes mount secrets: whoever can see it was given it), an empty or
 * oversized file. One trailing newline (LF or CRLF) is stripped.
 */
export function readSecretFile(
  fileVar: string,
  path: string,
  mountinfo: () => string = procMountinfo,
): string {
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO at that path must not hang the start; it is refused below.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ConfigError(fileVar, `config error: ${fileVar} cannot be read: ${path} (${reason})`);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) {
      throw new ConfigError(fileVar, `config error: ${fileVar} is not a regular file: ${path}`);
    }
    const mode = stat.mode & 0o777;
    if (mode & 0o022) {
      throw new ConfigError(
        fileVar,
        `config error: ${fileVar} ${path} is writable by group or others (mode ${octal(mode)}): chmod 600 it (640 to share it with a group)`,
      );
    }
    if (mode & 0o004 && !onReadOnlyMount(realpathSync(path), mountinfo())) {
      throw new ConfigError(
        fileVar,
        `config error: ${fileVar} ${path} is readable by every user (mode ${octal(mode)}) on a writable filesystem: chmod 600 it (640 to share it with a group), or mount it read-only as a Docker or Kubernetes secret`,
      );
    }
    if (stat.size > MAX_SECRET_FILE_BYTES) {
      throw new ConfigError(
        fileVar,
        `config error: ${fileVar} ${path} is ${stat.size} bytes, more than a secret (at most ${MAX_SECRET_FILE_BYTES})`,
      );
    }
    const value = readFileSync(fd, "utf8").replace(/\r?\n$/, "");
    if (value.trim() === "") {
      throw new ConfigError(fileVar, `config error: ${fileVar} ${path} is empty`);
    }
    return value;
  } finally {
    closeSync(fd);
  }
}

/**
 * Returns `env` with every `NAME_FILE` of {@link FILE_SECRETS} replaced by `NAME` read from
 * that file. Setting both `NAME` and `NAME_FILE` is an error (which one should win is a guess).
 * @throws ConfigError naming the variable; the message never contains the secret.
 */
export function withSecretFiles(
  env: NodeJS.ProcessEnv,
  mountinfo: () => string = procMountinfo,
): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env };
  for (const name of FILE_SECRETS) {
    const fileVar = `${name}_FILE`;
    const path = env[fileVar]?.trim();
    delete out[fileVar];
    if (!path) continue;
    if (env[name]?.trim()) {
      throw new ConfigError(fileVar, `config error: set ${name} or ${fileVar}, not both`);
    }
    out[name] = readSecretFile(fileVar, path, mountinfo);
  }
  return out;
}
