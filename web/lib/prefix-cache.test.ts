import { describe, expect, it } from "vitest";
import { PREFIX_CACHE } from "@/components/test-kit";
import { fmtMiB, hitRate, prefixCacheFigures } from "./prefix-cache";
import type { PrefixCache } from "./types";

const cache = (over: Partial<PrefixCache> = {}): PrefixCache => ({ ...PREFIX_CACHE, ...over });

describe("prefix cache figures", () => {
  it("gives held / capacity in MiB, entries, the hit rate and prompt reuse", () => {
    expect(prefixCacheFigures(cache())).toEqual({
      held: "12.4 / 1,024 MiB",
      entries: "2",
      hitRate: "75%",
      restored: "5,900",
      reused: "6,000 of 8,000 (75%)",
    });
  });

  it("says off for a cache of no capacity, and a dash before any lookup or prompt", () => {
    const idle = cache({
      bytes: 0,
      capacity_bytes: 0,
      entries: 0,
      hits: 0,
      misses: 0,
      restored_tokens: 0,
      reused_prompt_tokens: 0,
      computed_prompt_tokens: 0,
    });
    expect(hitRate(idle)).toBeNull();
    expect(prefixCacheFigures(idle)).toEqual({
      held: "off",
      entries: "0",
      hitRate: "—",
      restored: "0",
      reused: "—",
    });
  });

  it("counts misses alone as a 0% hit rate, not a dash", () => {
    expect(hitRate(cache({ hits: 0, misses: 4 }))).toBe(0);
    expect(prefixCacheFigures(cache({ hits: 0, misses: 4 })).hitRate).toBe("0%");
  });

  it("writes MiB with at most one decimal", () => {
    expect(fmtMiB(0)).toBe("0");
    expect(fmtMiB(512 * 1024)).toBe("0.5");
    expect(fmtMiB(8 * (1 << 30))).toBe("8,192");
  });
});
