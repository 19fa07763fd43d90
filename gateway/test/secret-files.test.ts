import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  FILE_SECRETS,
  MAX_SECRET_FILE_BYTES,
  onReadOnlyMount,
  withSecretFiles,
} from "../src/config/secrets.js";
import { loadConfig } from "../src/config.js";
import { catchConfigError } from "./helpers.js";

const SECRET = "k3J9xQ2vL8pR5tW1yZ7aB4cD6eF0gH2iJ-file";
const TOKEN = "llm-token-from-a-file-7f3a9c1e5b2d";
const dirs: string[] = [];

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "gw-secret-files-"));
  dirs.push(dir);
  return dir;
}

/** A file with `content` and `mode` in a fresh directory. */
function secretFile(content: string, mode = 0o600, dir = tempDir()): string {
  const path = join(dir, "secret");
  writeFileSync(path, content);
  chmodSync(path, mode);
  return path;
}

const base = { APP_ENV: "production", LLM_SERVER_TOKEN: TOKEN, AUTH_SECRET: SECRET };

/**
 * Makes `dir` a read-only bind mount of itself, as Docker mounts a secret. Needs root (or
 * CAP_SYS_ADMIN); `undefined` when it worked, else the reason.
 */
function mountReadOnly(dir: string): string | undefined {
  const bind = spawnSync("mount", ["--bind", dir, dir], { encoding: "utf8" });
  if (bind.status !== 0) return `mount --bind: ${bind.stderr.trim() || bind.error?.message}`;
  const ro = spawnSync("mount", ["-o", "remount,bind,ro", dir], { encoding: "utf8" });
  if (ro.status !== 0) {
    spawnSync("umount", [dir]);
    return `mount -o remount,bind,ro: ${ro.stderr.trim()}`;
  }
  mounted.push(dir);
  return undefined;
}
const mounted: string[] = [];

const probe = tempDir();
const cannotMount = mountReadOnly(probe);
if (cannotMount !== undefined) {
  if (process.env.CI === "true") throw new Error(`read-only mounts are needed: ${cannotMount}`);
  console.warn(`SKIPPING read-only mount tests: ${cannotMount}`);
}

afterAll(() => {
  for (const dir of mounted.reverse()) execFileSync("umount", [dir]);
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe("NAME_FILE secrets", () => {
  it("reads every secret variable from its file, one trailing newline stripped", () => {
    const files = Object.fromEntries(
      [
        ["AUTH_SECRET", `${SECRET}\n`],
        ["LLM_SERVER_TOKEN", `${TOKEN}\r\n`],
        ["METRICS_TOKEN", "metrics-token-from-file\n"],
        ["DATABASE_URL", "postgres://gw:p%40ss@db:5432/gateway\n"],
        ["REDIS_URL", "redis://:pw@redis:6379/0"],
        ["OIDC_CLIENT_SECRET", "oidc-secret\n"],
        ["GITHUB_CLIENT_SECRET", "github-secret\n"],
        ["GOOGLE_CLIENT_SECRET", "google-secret\n"],
        ["SMTP_URL", "smtp://mailer%40example.org@mail.example.org:2587\n"],
        ["SMTP_PASSWORD", "smtp-secret\n"],
      ].map(([name, content]) => [`${name}_FILE`, secretFile(content as string)]),
    );
    expect(Object.keys(files).sort()).toEqual(FILE_SECRETS.map((n) => `${n}_FILE`).sort());
    const config = loadConfig({
      APP_ENV: "production",
      ...files,
      OIDC_ISSUER: "https://id.example.org",
      OIDC_CLIENT_ID: "oidc-id",
      GITHUB_CLIENT_ID: "gh-id",
      GOOGLE_CLIENT_ID: "g-id",
    });
    expect(config.mail).toEqual({
      host: "mail.example.org",
      port: 2587,
      secure: false,
      user: "mailer@example.org",
      password: "smtp-secret",
      from: "mailer@example.org",
    });
    expect(config.authSecret).toBe(SECRET);
    expect(config.llmServerToken).toBe(TOKEN);
    expect(config.metricsToken).toBe("metrics-token-from-file");
    expect(config.databaseUrl).toBe("postgres://gw:p%40ss@db:5432/gateway");
    expect(config.redisUrl).toBe("redis://:pw@redis:6379/0");
    expect(config.oauth.oidc?.clientSecret).toBe("oidc-secret");
    expect(config.oauth.github?.clientSecret).toBe("github-secret");
    expect(config.oauth.google?.clientSecret).toBe("google-secret");
  });

  it("refuses NAME and NAME_FILE together, naming both and echoing neither", () => {
    const err = catchConfigError(() =>
      loadConfig({ ...base, AUTH_SECRET_FILE: secretFile(`${SECRET}-other`) }),
    );
    expect(err.variable).toBe("AUTH_SECRET_FILE");
    expect(err.message).toBe("config error: set AUTH_SECRET or AUTH_SECRET_FILE, not both");
  });

  it("ignores an empty NAME_FILE, like any empty variable", () => {
    expect(loadConfig({ ...base, AUTH_SECRET_FILE: " " }).authSecret).toBe(SECRET);
  });

  it("a placeholder in the file is refused like one in the variable", () => {
    const err = catchConfigError(() =>
      loadConfig({ ...base, AUTH_SECRET: "", AUTH_SECRET_FILE: secretFile("changeme\n") }),
    );
    expect(err.message).toMatch(/^config error: set AUTH_SECRET \(/);
  });

  it("names the variable and the path when the file cannot be read", () => {
    const missing = join(tempDir(), "nope");
    const err = catchConfigError(() => withSecretFiles({ AUTH_SECRET_FILE: missing }));
    expect(err.variable).toBe("AUTH_SECRET_FILE");
    expect(err.message).toBe(`config error: AUTH_SECRET_FILE cannot be read: ${missing} (ENOENT)`);
  });

  it("refuses a directory and a FIFO (without hanging on it)", () => {
    const dir = tempDir();
    expect(catchConfigError(() => withSecretFiles({ REDIS_URL_FILE: dir })).message).toBe(
      `config error: REDIS_URL_FILE is not a regular file: ${dir}`,
    );
    const fifo = join(tempDir(), "fifo");
    execFileSync("mkfifo", ["-m", "600", fifo]);
    expect(catchConfigError(() => withSecretFiles({ REDIS_URL_FILE: fifo })).message).toBe(
      `config error: REDIS_URL_FILE is not a regular file: ${fifo}`,
    );
  });

  const modes = (...list: number[]) => list.map((mode) => [mode.toString(8), mode] as const);

  it.each(modes(0o620, 0o602, 0o666, 0o660))(
    "refuses a file writable by others (mode 0%s)",
    (_, mode) => {
      const path = secretFile(SECRET, mode);
      const err = catchConfigError(() => withSecretFiles({ AUTH_SECRET_FILE: path }));
      expect(err.variable).toBe("AUTH_SECRET_FILE");
      expect(err.message).toContain(`is writable by group or others (mode 0${mode.toString(8)})`);
      expect(err.message).not.toContain(SECRET);
    },
  );

  it.each(modes(0o644, 0o604, 0o444))(
    "refuses a world-readable file (mode 0%s) on a writable filesystem",
    (_, mode) => {
      const path = secretFile(SECRET, mode);
      const err = catchConfigError(() => withSecretFiles({ LLM_SERVER_TOKEN_FILE: path }));
      expect(err.variable).toBe("LLM_SERVER_TOKEN_FILE");
      expect(err.message).toBe(
        `config error: LLM_SERVER_TOKEN_FILE ${path} is readable by every user (mode 0${mode.toString(8)}) on a writable filesystem: chmod 600 it (640 to share it with a group), or mount it read-only as a Docker or Kubernetes secret`,
      );
    },
  );

  it.each(modes(0o600, 0o400, 0o640, 0o440))("accepts mode 0%s", (_, mode) => {
    const path = secretFile(`${TOKEN}\n`, mode);
    expect(withSecretFiles({ LLM_SERVER_TOKEN_FILE: path })).toEqual({ LLM_SERVER_TOKEN: TOKEN });
  });

  it("refuses an empty file and an oversized one, without echoing it", () => {
    const empty = secretFile("\n");
    expect(catchConfigError(() => withSecretFiles({ METRICS_TOKEN_FILE: empty })).message).toBe(
      `config error: METRICS_TOKEN_FILE ${empty} is empty`,
    );
    const big = secretFile("s".repeat(MAX_SECRET_FILE_BYTES + 1));
    const err = catchConfigError(() => withSecretFiles({ METRICS_TOKEN_FILE: big }));
    expect(err.message).toContain("more than a secret");
    expect(err.message.length).toBeLessThan(300);
  });

  it.skipIf(cannotMount !== undefined)(
    "accepts a world-readable file on a read-only mount (Docker and Compose secrets)",
    () => {
      const dir = tempDir();
      const path = secretFile(`${SECRET}\n`, 0o644, dir);
      expect(mountReadOnly(dir)).toBeUndefined();
      expect(withSecretFiles({ AUTH_SECRET_FILE: path })).toEqual({ AUTH_SECRET: SECRET });
      // Writable bits are refused even there.
      const dir2 = tempDir();
      const writable = secretFile(SECRET, 0o666, dir2);
      expect(mountReadOnly(dir2)).toBeUndefined();
      expect(
        catchConfigError(() => withSecretFiles({ AUTH_SECRET_FILE: writable })).message,
      ).toContain("writable by group or others");
    },
  );

  /** A Kubernetes secret volume: key -> ..data/key, ..data -> a timestamped directory. */
  function kubernetesVolume(mode: number): { dir: string; path: string } {
    const dir = tempDir();
    const stamped = join(dir, "..2026_12_02_17_00_00.123456789");
    mkdirSync(stamped);
    writeFileSync(join(stamped, "auth-secret"), `${SECRET}\n`);
    chmodSync(join(stamped, "auth-secret"), mode);
    symlinkSync("..2026_12_02_17_00_00.123456789", join(dir, "..data"));
    symlinkSync("..data/auth-secret", join(dir, "auth-secret"));
    return { dir, path: join(dir, "auth-secret") };
  }

  it.skipIf(cannotMount !== undefined)(
    "accepts a Kubernetes secret volume at its default mode 0644 (read-only, through symlinks)",
    () => {
      const { dir, path } = kubernetesVolume(0o644);
      expect(catchConfigError(() => withSecretFiles({ AUTH_SECRET_FILE: path })).message).toContain(
        "readable by every user (mode 0644)",
      );
      expect(mountReadOnly(dir)).toBeUndefined();
      expect(withSecretFiles({ AUTH_SECRET_FILE: path })).toEqual({ AUTH_SECRET: SECRET });
    },
  );

  it("accepts a Kubernetes secret volume with defaultMode 0440 (what deploy/k8s sets)", () => {
    const { path } = kubernetesVolume(0o440);
    expect(withSecretFiles({ AUTH_SECRET_FILE: path })).toEqual({ AUTH_SECRET: SECRET });
  });
});

describe("onReadOnlyMount", () => {
  const mountinfo = [
    "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw",
    "30 22 0:40 / /run/secrets ro,relatime - tmpfs tmpfs rw,size=1024k",
    "31 22 0:41 / /run/secrets/rw rw,relatime - tmpfs tmpfs rw",
    "32 22 0:42 / /mnt/with\\040space ro - tmpfs tmpfs rw",
    "33 22 0:43 / /var/lib/sb ro,relatime - tmpfs tmpfs rw",
    "34 22 0:43 / /var/lib/sb rw,relatime - tmpfs tmpfs rw",
    "35 22 0:44 / /srv rw,relatime - squashfs /dev/loop0 ro",
    "",
  ].join("\n");

  it.each([
    ["/run/secrets/token", true],
    ["/run/secrets", true],
    ["/run/secrets/rw/token", false],
    ["/run/secretsx/token", false],
    ["/etc/token", false],
    ["/mnt/with space/token", true],
    ["/var/lib/sb/token", false],
    ["/srv/token", true],
  ])("%s is read-only: %s", (path, expected) => {
    expect(onReadOnlyMount(path, mountinfo)).toBe(expected);
  });

  it("is false without mount information (not Linux)", () => {
    expect(onReadOnlyMount("/run/secrets/token", "")).toBe(false);
  });
});
