import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import { parseRoutingFile } from "../src/config/routing-file.js";
import { readPrefixCache } from "../src/services/prefix-cache.js";
import { type FakeLlm, readyWith, startFakeLlm } from "./fake-llm.js";
import { type FakeOpenAi, startFakeOpenAi } from "./fake-openai.js";
import { bearer, type Session, signUpAdmin, testConfig } from "./helpers.js";
import { routingToml } from "./routing-toml.js";

const KEY = "sk-remote-key-for-the-prefix-cache-test";

/** A model's prefix caches as llm-server reports them (1 GiB bound, 3 hits of 4 lookups). */
const CACHE = {
  bytes: 13_000_000,
  capacity_bytes: 1 << 30,
  entries: 2,
  hits: 3,
  misses: 1,
  restored_tokens: 5_900,
  reused_prompt_tokens: 6_100,
  computed_prompt_tokens: 2_400,
};

interface Upstream {
  kind: string;
  model: string;
  state: string;
  prefix_cache?: unknown;
}
type Listed = { id: string; state: string; upstreams: Upstream[] }[];

describe("readPrefixCache", () => {
  it("takes a whole report of non-negative integers and leaves unknown fields out", () => {
    expect(readPrefixCache({ ...CACHE, later_field: "x" })).toEqual(CACHE);
    expect(readPrefixCache({ ...CACHE, capacity_bytes: 0, bytes: 0 })).toMatchObject({
      capacity_bytes: 0,
    });
  });

  it.each([
    ["absent (an older llm-server)", undefined],
    ["null (a model not loaded)", null],
    ["a string", "13 MB"],
    ["an array", [1, 2, 3]],
    ["a field missing", { ...CACHE, computed_prompt_tokens: undefined }],
    ["a field as a string", { ...CACHE, hits: "3" }],
    ["a negative field", { ...CACHE, bytes: -1 }],
    ["a fraction", { ...CACHE, entries: 1.5 }],
    ["a number past 2^53", { ...CACHE, bytes: 1e300 }],
    ["a field null", { ...CACHE, misses: null }],
  ])("ignores a report that is %s", (_, value) => {
    expect(readPrefixCache(value)).toBeUndefined();
  });
});

/**
 * The admin's model list over real sockets: a fake llm-server reporting its models' prefix
 * caches in `/health/ready` (as llm-server does), beside an OpenAI-compatible upstream.
 */
describe("prefix caches on /api/admin/models", () => {
  let llm: FakeLlm;
  let remote: FakeOpenAi;
  let app: FastifyInstance;
  let admin: Session;

  beforeAll(async () => {
    llm = await startFakeLlm();
    remote = await startFakeOpenAi(KEY);
    const file = routingToml([
      {
        name: "local",
        upstreams: [
          { kind: "llm-server", url: llm.url, model: "gemma" },
          { kind: "openai", url: remote.url, model: "gemma", api_key_env: "REMOTE_KEY" },
        ],
      },
      { name: "cold", upstreams: [{ kind: "llm-server", url: llm.url, model: "tiny" }] },
    ]);
    const models = parseRoutingFile(file, "models.toml", { REMOTE_KEY: KEY });
    app = await buildApp(testConfig({ models }));
    admin = await signUpAdmin(app, "prefix-cache-admin@example.org");
  });

  afterAll(async () => {
    await app.close();
    await llm.close();
    await remote.close();
  });

  async function listed(): Promise<Listed> {
    await app.services.router.checkAll();
    const res = await app.inject({
      method: "GET",
      url: "/api/admin/models",
      headers: bearer(admin.token),
    });
    expect(res.statusCode).toBe(200);
    return (res.json() as { models: Listed }).models;
  }

  it("shows each llm-server upstream's last report, none for an OpenAI upstream or a model not loaded", async () => {
    llm.health = readyWith([
      { id: "gemma", state: "loaded", prefix_cache: CACHE },
      { id: "tiny", state: "unloaded", prefix_cache: null },
    ]);
    const [local, cold] = await listed();
    expect(local?.upstreams).toEqual([
      expect.objectContaining({ kind: "llm-server", state: "up", prefix_cache: CACHE }),
      expect.objectContaining({ kind: "openai", state: "up" }),
    ]);
    expect(local?.upstreams[1]).not.toHaveProperty("prefix_cache");
    expect(cold?.state).toBe("unloaded");
    expect(cold?.upstreams[0]).not.toHaveProperty("prefix_cache");

    // The next check's figures replace them.
    const later = { ...CACHE, hits: 4, restored_tokens: 7_900 };
    llm.health = readyWith([{ id: "gemma", state: "loaded", prefix_cache: later }]);
    expect((await listed())[0]?.upstreams[0]?.prefix_cache).toEqual(later);
  });

  it("keeps an llm-server ready and routed when its report is malformed or missing", async () => {
    for (const prefix_cache of [undefined, "full", { ...CACHE, bytes: -5 }, { hits: 1 }]) {
      llm.health = readyWith([
        { id: "gemma", state: "loaded", ...(prefix_cache === undefined ? {} : { prefix_cache }) },
        { id: "tiny", state: "loaded", prefix_cache: [CACHE] },
      ]);
      const [local, cold] = await listed();
      expect(local?.state).toBe("ready");
      expect(cold?.state).toBe("ready");
      expect(local?.upstreams[0]).toMatchObject({ kind: "llm-server", state: "up" });
      expect(local?.upstreams[0]).not.toHaveProperty("prefix_cache");
      expect(cold?.upstreams[0]).not.toHaveProperty("prefix_cache");
    }
    // One model's bad report costs only its own figures.
    llm.health = readyWith([
      { id: "gemma", state: "loaded", prefix_cache: CACHE },
      { id: "tiny", state: "loaded", prefix_cache: { ...CACHE, entries: "two" } },
    ]);
    const [local, cold] = await listed();
    expect(local?.upstreams[0]?.prefix_cache).toEqual(CACHE);
    expect(cold?.upstreams[0]).not.toHaveProperty("prefix_cache");
  });
});
