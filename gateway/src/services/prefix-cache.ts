import { type Static, Type } from "typebox";
import { Value } from "typebox/value";

const count = (description: string) =>
  Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description });

/**
 * A model's prefix caches as an llm-server reports them in `/health/ready`
 * (`models: [{id, state, prefix_cache}]`): its host-memory KV cache and its prompt tokens
 * found cached against those read afresh. Validates what llm-server sends and documents what
 * `GET /api/admin/models` gives.
 */
export const PrefixCache = Type.Object(
  {
    bytes: count("KV state bytes its host-memory cache holds"),
    capacity_bytes: count("That cache's bound (LLM_PREFIX_CACHE_BYTES); 0: the cache is off"),
    entries: count("Sequences the cache holds"),
    hits: count("Prompts whose prefix was restored from host memory"),
    misses: count("Prompts of 64+ tokens found neither in host memory nor in the KV context"),
    restored_tokens: count("Prompt tokens restored from host memory"),
    reused_prompt_tokens: count(
      "Prompt tokens not recomputed: restored, or still in the KV context",
    ),
    computed_prompt_tokens: count("Prompt tokens read afresh"),
  },
  {
    description:
      "Counts since the model loaded on that llm-server. Absent while it is not loaded, for " +
      "an llm-server too old to report it, and for an OpenAI-compatible upstream.",
  },
);

export type PrefixCacheReport = Static<typeof PrefixCache>;

const FIELDS = Object.keys(PrefixCache.properties) as (keyof PrefixCacheReport)[];

/**
 * The report in `value` when every field is a non-negative safe integer; undefined otherwise
 * (an older llm-server sends none, a model not loaded sends null, and a malformed one is
 * ignored rather than shown wrong). Unknown fields are left out.
 */
export function readPrefixCache(value: unknown): PrefixCacheReport | undefined {
  if (!Value.Check(PrefixCache, value)) return undefined;
  return Object.fromEntries(FIELDS.map((field) => [field, value[field]])) as PrefixCacheReport;
}
