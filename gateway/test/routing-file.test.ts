import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { inspect } from "node:util";
import { describe, expect, it } from "vitest";
import { fallbackChain, parseRoutingFile } from "../src/config/routing-file.js";
import { ConfigError, loadConfig } from "../src/config.js";

const KEY = "sk-test-routing-secret-0123456789";

const TWO_MODELS = `
default = "small"

[[models]]
name = "small"
aliases = ["gemma"]
fallbacks = ["big"]
[[models.upstreams]]
kind = "llm-server"
url = "http://127.0.0.1:8000/"
model = "gemma-3-270m"

[[models]]
name = "big"
kind = "chat"
[[models.upstreams]]
kind = "openai"
url = "https://gpu-box:8000/v1"
model = "Qwen/Qwen2.5-7B-Instruct"
api_key_env = "BIG_KEY"
weight = 3
timeout_s = 1.5
`;

/** The one-line message of the ConfigError that parsing `text` throws. */
function refusal(text: string, env: NodeJS.ProcessEnv = { BIG_KEY: KEY }): string {
  try {
    parseRoutingFile(text, "models.toml", env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const message = (err as Error).message;
    expect(message).not.toContain("\n");
    expect(message).not.toContain(KEY);
    return message;
  }
  throw new Error("the routing file was accepted");
}

/** A file of one model `a` whose upstream has the extra TOML lines `upstream`. */
const oneModel = (upstream: string, model = "") => `
[[models]]
name = "a"
${model}
[[models.upstreams]]
kind = "openai"
url = "http://127.0.0.1:9/v1"
model = "m"
${upstream}
`;

describe("GATEWAY_MODELS_FILE", () => {
  it("reads models, aliases, fallbacks, upstreams, keys and defaults", () => {
    const config = parseRoutingFile(TWO_MODELS, "models.toml", { BIG_KEY: KEY });
    expect(config.defaultModel).toBe("small");
    const [small, big] = config.models;
    expect(small).toMatchObject({ name: "small", aliases: ["gemma"], fallbacks: ["big"] });
    expect(small?.upstreams[0]).toMatchObject({
      kind: "llm-server",
      url: "http://127.0.0.1:8000",
      model: "gemma-3-270m",
      weight: 1,
      apiKey: undefined,
      firstTokenTimeoutMs: undefined,
    });
    expect(big?.kind).toBe("chat");
    expect(big?.upstreams[0]).toMatchObject({ weight: 3, firstTokenTimeoutMs: 1500 });
    expect(big?.upstreams[0]?.apiKey?.reveal()).toBe(KEY);
    // The key never shows when the config is serialised or inspected (a log line, a dump).
    expect(JSON.stringify(config)).not.toContain(KEY);
    expect(inspect(config, { depth: 10 })).not.toContain(KEY);
    expect(fallbackChain(config, "small")).toEqual(["small", "big"]);
  });

  it("reads the key from a secret file, and loadConfig reads the file", () => {
    const dir = mkdtempSync(join(tmpdir(), "routing-"));
    const keyFile = join(dir, "key");
    writeFileSync(keyFile, `${KEY}\n`);
    chmodSync(keyFile, 0o600);
    const file = join(dir, "models.toml");
    writeFileSync(file, oneModel(`api_key_file = "${keyFile}"`));
    const config = loadConfig({ APP_ENV: "test", GATEWAY_MODELS_FILE: file });
    expect(config.models?.models[0]?.upstreams[0]?.apiKey?.reveal()).toBe(KEY);
    expect(config.models?.defaultModel).toBe("a");
    chmodSync(keyFile, 0o644);
    expect(() => loadConfig({ APP_ENV: "test", GATEWAY_MODELS_FILE: file })).toThrow(
      /api_key_file .* readable by every user/,
    );
  });

  it("names the file, line and entry of a TOML syntax error", () => {
    const message = refusal('[[models]]\nname = "a"\nweight = = 3\n');
    expect(message).toMatch(
      /^config error: GATEWAY_MODELS_FILE models\.toml \(line 3, column \d+\): /,
    );
  });

  it("names the line and entry of a value the schema refuses", () => {
    expect(refusal(oneModel("weight = 0"))).toBe(
      'config error: GATEWAY_MODELS_FILE models.toml (line 9, models[0] "a", upstreams[0], weight): weight must be >= 1',
    );
    expect(refusal(oneModel("weight = 1e400"))).toMatch(/line 9, .*weight must be <= 1000/);
    expect(refusal(oneModel("weight = 99999999999999999999999"))).toMatch(/line 9/);
    expect(refusal(oneModel("weight = 2.5"))).toMatch(/weight must be integer/);
    expect(refusal(oneModel('weight = "3"'))).toMatch(/weight must be integer/);
    expect(refusal(oneModel("weight = 99999999"))).toMatch(/weight must be <= 1000/);
    expect(refusal(oneModel("timeout_s = -1"))).toMatch(/timeout_s must be > 0/);
    expect(refusal(oneModel("wieght = 2"))).toMatch(/line \d+.*unknown key "wieght"/);
    expect(refusal(oneModel('kind = "vllm"').replace('kind = "openai"\n', ""))).toMatch(
      /kind must be one of llm-server\|openai/,
    );
    expect(
      refusal(
        '[[models]]\nname = "a b"\n[[models.upstreams]]\nkind="openai"\nurl="http://x/v1"\nmodel="m"\n',
      ),
    ).toMatch(/line 2, models\[0\] "a b", name\): name may hold letters/);
    expect(refusal("models = []\n")).toMatch(/models must NOT have fewer than 1 items/);
    expect(refusal(oneModel("", "model = 12"))).toMatch(/unknown key "model"/);
  });

  it("refuses an upstream URL carrying credentials, without echoing them", () => {
    const message = refusal(
      oneModel("").replace("http://127.0.0.1:9/v1", `https://user:${KEY}@api.example.com/v1`),
    );
    expect(message).toContain("url https://api.example.com carries credentials");
    expect(message).toContain("line 7");
    expect(refusal(oneModel("").replace("http://127.0.0.1:9/v1", `${KEY}`))).toMatch(
      /url is not a valid URL \(\d+ characters\)/,
    );
    expect(
      refusal(oneModel("").replace("http://127.0.0.1:9/v1", `http://h/v1?key=${KEY}`)),
    ).toMatch(/must have no query or fragment/);
    expect(refusal(oneModel("").replace("http://127.0.0.1:9/v1", "ftp://h/v1"))).toMatch(
      /must use http or https/,
    );
  });

  it("refuses duplicate names (ignoring case), aliases and upstreams", () => {
    const twice = `${oneModel("")}${oneModel("").replace('name = "a"', 'name = "A"')}`;
    expect(refusal(twice)).toMatch(/models\[1\] "A", name\): the name "A" is used twice/);
    expect(refusal(oneModel("", 'aliases = ["a"]'))).toMatch(/the name "a" is used twice/);
    expect(refusal(oneModel("", 'aliases = ["default"]'))).toMatch(/"default" is reserved/);
    const sameUrl = `${oneModel("")}[[models.upstreams]]\nkind = "openai"\nurl = "http://127.0.0.1:9/v1/"\nmodel = "n"\n`;
    expect(refusal(sameUrl)).toMatch(
      /upstreams\[1\], url\): http:\/\/127\.0\.0\.1:9\/v1 is listed twice/,
    );
  });

  it("refuses fallback cycles, unknown fallbacks and an unknown default", () => {
    const cycle = `${oneModel("", 'fallbacks = ["b"]')}${oneModel("", 'fallbacks = ["c"]').replace('name = "a"', 'name = "b"')}${oneModel("", 'fallbacks = ["A"]').replace('name = "a"', 'name = "c"')}`;
    expect(refusal(cycle)).toMatch(/fallback cycle: a → b → c → a$/);
    expect(refusal(oneModel("", 'fallbacks = ["a"]'))).toMatch(/"a" falls back to itself/);
    expect(refusal(oneModel("", 'fallbacks = ["zzz"]'))).toMatch(/fallback "zzz" names no model/);
    expect(refusal(`default = "zzz"\n${oneModel("")}`)).toMatch(
      /line 1, default\): default names no model/,
    );
  });

  it("checks keys: from a variable that is set, for openai upstreams only, one way", () => {
    expect(refusal(oneModel('api_key_env = "MISSING_KEY"'))).toMatch(
      /api_key_env\): set MISSING_KEY \(the upstream's API key\)/,
    );
    expect(refusal(oneModel('api_key_env = "BIG_KEY"\napi_key_file = "/x"'))).toMatch(
      /set api_key_env or api_key_file, not both/,
    );
    const llm = oneModel('api_key_env = "BIG_KEY"').replace(
      'kind = "openai"',
      'kind = "llm-server"',
    );
    expect(refusal(llm)).toMatch(/LLM_SERVER_TOKEN/);
    expect(refusal(oneModel('api_key_env = "BIG_KEY"'), { BIG_KEY: "a\nb" })).toMatch(
      /control characters/,
    );
  });

  it("fails loadConfig with one line when the file is missing", () => {
    expect(() =>
      loadConfig({ APP_ENV: "test", GATEWAY_MODELS_FILE: "/nonexistent/models.toml" }),
    ).toThrow(
      "config error: GATEWAY_MODELS_FILE cannot be read: /nonexistent/models.toml (ENOENT)",
    );
  });

  it("stops the real process at start: exit 1 and one line on stderr, no key in it", () => {
    const root = resolve(import.meta.dirname, "..");
    const loader = pathToFileURL(join(root, "node_modules", "tsx", "dist", "loader.mjs")).href;
    const dir = mkdtempSync(join(tmpdir(), "routing-start-"));
    const start = (toml: string) => {
      const file = join(dir, "models.toml");
      writeFileSync(file, toml);
      return spawnSync(process.execPath, ["--import", loader, join(root, "src", "server.ts")], {
        cwd: dir,
        env: {
          PATH: process.env.PATH ?? "",
          APP_ENV: "development",
          GATEWAY_PORT: "0",
          GATEWAY_MODELS_FILE: file,
          BIG_KEY: KEY,
        },
        encoding: "utf8",
        timeout: 30_000,
      });
    };
    const lines = (text: string) => text.split("\n").filter((l) => l.trim() !== "");
    const cycle = start(
      `${oneModel("", 'fallbacks = ["b"]')}${oneModel("", 'fallbacks = ["a"]').replace('name = "a"', 'name = "b"')}`,
    );
    expect(cycle.status).toBe(1);
    expect(lines(cycle.stderr)).toEqual([
      'config error: GATEWAY_MODELS_FILE models.toml (line 4, models[0] "a", fallbacks): fallback cycle: a → b → a'.replace(
        "models.toml",
        join(dir, "models.toml"),
      ),
    ]);
    const credentials = start(
      oneModel('api_key_env = "BIG_KEY"').replace(
        "http://127.0.0.1:9/v1",
        `https://me:${KEY}@h/v1`,
      ),
    );
    expect(credentials.status).toBe(1);
    expect(lines(credentials.stderr)).toHaveLength(1);
    expect(credentials.stderr).toContain("carries credentials");
    expect(credentials.stderr + credentials.stdout).not.toContain(KEY);
  }, 60_000);
});
