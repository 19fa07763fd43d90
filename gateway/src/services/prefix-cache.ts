/**
 * A model's prefix caches as an llm-server reports them in `/health/ready`
 * (`models: [{id, state, prefix_cache}]`): its host-memory KV cache and its prompt tokens
 * found cached against those read afresh. Shown on the admin Models page.
 */
export interface PrefixCacheReport {
  bytes: number;
  capacity_bytes: number;
  entries: number;
  hits: number;
  misses: number;
  restored_tokens: number;
  reused_prompt_tokens: number;
  computed_prompt_tokens: number;
}

const FIELDS = [
  "bytes",
  "capacity_bytes",
  "entries",
  "hits",
  "misses",
  "restored_tokens",
  "reused_prompt_tokens",
  "computed_prompt_tokens",
] as const satisfies readonly (keyof PrefixCacheReport)[];

/**
 * The report in `value` when every field is a non-negative safe integer; undefined otherwise
 * (an older llm-server sends none, a model not loaded sends null, and a malformed one is
 * ignored rather than shown wrong). Unknown fields are left out.
 */
export function readPrefixCache(value: unknown): PrefixCacheReport | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const source = value as Record<string, unknown>;
  const report: Partial<Record<keyof PrefixCacheReport, number>> = {};
  for (const field of FIELDS) {
    const n = source[field];
    if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) return undefined;
    report[field] = n;
  }
  return report as PrefixCacheReport;
}
