import { describe, expect, it } from "vitest";
import { blocksOf, type MarkdownBlocks, splitMarkdown } from "./markdown-blocks";

/** Feeds `text` in pieces of `step` characters, as a stream would. */
function stream(text: string, step = 1): MarkdownBlocks {
  let state: MarkdownBlocks | null = null;
  for (let i = step; i < text.length + step; i += step) {
    state = splitMarkdown(state, text.slice(0, i));
    expect(blocksOf(state).join("")).toBe(text.slice(0, i));
  }
  if (!state) throw new Error("empty");
  return state;
}

describe("splitMarkdown", () => {
  it("settles every top-level block before the last one; the pieces add up to the text", () => {
    const text = "# Title\n\nA paragraph\nover two lines.\n\n- a\n- b\n\n```js\nx()\n\n```\nEnd\n";
    const state = stream(text);
    expect(state.settled).toEqual([
      "# Title",
      "\n\nA paragraph\nover two lines.",
      "\n\n- a\n- b",
      "\n\n```js\nx()\n\n```",
    ]);
    expect(blocksOf(state).at(-1)).toBe("\nEnd\n");
  });

  it("keeps an open block open: a list continued after a blank line, an unclosed fence", () => {
    expect(stream("- a\n\n  still a\n").settled).toEqual([]);
    expect(stream("```\ncode\n\n# not a heading\n").settled).toEqual([]);
  });

  it("never settles on an unfinished line (`#` may become `#tag`, a lazy continuation)", () => {
    let state = splitMarkdown(null, "para\n#");
    expect(state.settled).toEqual([]);
    state = splitMarkdown(state, "para\n#tag\n");
    expect(state.settled).toEqual([]);
    expect(blocksOf(state)).toEqual(["para\n#tag\n"]);
  });

  it("renders the whole text as one block once a definition appears", () => {
    const state = stream("See [x][1].\n\n[1]: https://example.com\n\nMore\n");
    expect(state.whole).toBe(true);
    expect(blocksOf(state)).toEqual([state.text]);
    // Still in the tail (not settled yet): whole as well.
    expect(blocksOf(splitMarkdown(null, "See [x][1].\n\n[1]: https://e.com"))).toHaveLength(1);
  });

  it("starts over when the text is not an extension of the previous one", () => {
    const first = stream("one\n\ntwo\n\nthree");
    const next = splitMarkdown(first, "other\n\ntext");
    expect(blocksOf(next).join("")).toBe("other\n\ntext");
    expect(next.settled).toEqual([]);
    expect(splitMarkdown(next, "other\n\ntext\n").settled).toEqual(["other"]);
  });

  it("parses nothing again for a delta without a new line", () => {
    const a = splitMarkdown(null, "one\n\ntwo\n\nthr");
    const b = splitMarkdown(a, "one\n\ntwo\n\nthree");
    expect(b.settled).toBe(a.settled);
    expect(b.parsedTo).toBe(a.parsedTo);
  });
});
