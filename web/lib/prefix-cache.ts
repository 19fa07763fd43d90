import { fmtInt, fmtPct } from "./charts";
import type { PrefixCache } from "./types";

const MIB = 1024 * 1024;

/** Bytes in MiB, at most one decimal: 13,000,000 → "12.4", 1 GiB → "1,024". */
export const fmtMiB = (bytes: number) =>
  (bytes / MIB).toLocaleString("en-US", { maximumFractionDigits: 1 });

/** Hits over lookups (hits + misses); null before the first lookup. */
export function hitRate(c: PrefixCache): number | null {
  const lookups = c.hits + c.misses;
  return lookups > 0 ? c.hits / lookups : null;
}

/** What a prefix-cache row of the admin Models page shows, each figure as text. */
export function prefixCacheFigures(c: PrefixCache) {
  const prompt = c.reused_prompt_tokens + c.computed_prompt_tokens;
  return {
    held: c.capacity_bytes > 0 ? `${fmtMiB(c.bytes)} / ${fmtMiB(c.capacity_bytes)} MiB` : "off",
    entries: fmtInt(c.entries),
    hitRate: fmtPct(hitRate(c)),
    restored: fmtInt(c.restored_tokens),
    reused:
      prompt > 0
        ? `${fmtInt(c.reused_prompt_tokens)} of ${fmtInt(prompt)} (${fmtPct(c.reused_prompt_tokens / prompt)})`
        : "—",
  };
}
