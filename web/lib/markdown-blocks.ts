/**
 * Splits a growing markdown text into top-level blocks, incrementally, so that a streamed
 * answer is re-parsed and re-rendered only from its last block on.
 *
 * Why this is exact: CommonMark (and GFM) parse blocks line by line, and only the last child
 * of the document can still be open; once a complete line has started a new top-level block,
 * every block before it is closed for good, whatever text follows. So the blocks before the
 * last one of the complete lines are final ("settled"); only the last one and the unfinished
 * line after it (the "tail") can still change. Link reference and footnote definitions are
 * the exception (they resolve across blocks): an answer that has one is rendered whole.
 */
import type { Root } from "mdast";
import { fromMarkdown } from "mdast-util-from-markdown";
import { gfmFromMarkdown } from "mdast-util-gfm";
import { gfm } from "micromark-extension-gfm";

export interface MarkdownBlocks {
  /** The text these blocks were made from. */
  text: string;
  /** Settled blocks, in order; each keeps the blank lines before it. */
  settled: string[];
  /** Where the unsettled tail starts in `text`. */
  tailStart: number;
  /** Length of the tail's complete lines when last parsed (no new line: nothing to settle). */
  parsedTo: number;
  /** A settled block is a definition: render the text as one document. */
  whole: boolean;
}

const EMPTY: MarkdownBlocks = { text: "", settled: [], tailStart: 0, parsedTo: 0, whole: false };
const mdOptions = { extensions: [gfm()], mdastExtensions: [gfmFromMarkdown()] };
/** A link reference or footnote definition may start this line. */
const DEFINITION = /^ {0,3}\[[^\]\n]*\]:/m;

function parse(text: string): Root {
  return fromMarkdown(text, mdOptions);
}

/**
 * The blocks of `text`, reusing `prev` when `text` extends the text `prev` was made from
 * (the cost is then that of the last block, not of the whole text).
 */
export function splitMarkdown(prev: MarkdownBlocks | null, text: string): MarkdownBlocks {
  const base = prev && text.startsWith(prev.text) ? prev : EMPTY;
  if (base.text === text) return base;
  const tail = text.slice(base.tailStart);
  const complete = tail.lastIndexOf("\n") + 1;
  if (complete <= base.parsedTo) return { ...base, text };
  const children = parse(tail.slice(0, complete)).children;
  const settled = [...base.settled];
  let whole = base.whole;
  let end = 0;
  for (const node of children.slice(0, -1)) {
    const to = node.position?.end.offset;
    if (to === undefined) break;
    settled.push(tail.slice(end, to));
    if (node.type === "definition" || node.type === "footnoteDefinition") whole = true;
    end = to;
  }
  return { text, settled, tailStart: base.tailStart + end, parsedTo: complete - end, whole };
}

/** The blocks to render: the settled ones and the tail, or the whole text as one block. */
export function blocksOf(state: MarkdownBlocks): string[] {
  const tail = state.text.slice(state.tailStart);
  if (state.whole || DEFINITION.test(tail)) return [state.text];
  return tail ? [...state.settled, tail] : state.settled;
}
