/**
 * Safe markdown for model answers: raw HTML is dropped (skipHtml), URLs go
 * through react-markdown's default sanitiser (no javascript:), links open in a
 * new tab with rel="noopener noreferrer", and images are never loaded — they
 * are shown as links to their address.
 *
 * Rendered per top-level block (`lib/markdown-blocks.ts`), each block memoised: while an
 * answer streams, a delta re-parses and re-renders only the last block.
 */
import { isValidElement, memo, type ReactNode, useRef } from "react";
import ReactMarkdown, { type Components } from "react-markdown";
import remarkGfm from "remark-gfm";
import { blocksOf, type MarkdownBlocks, splitMarkdown } from "@/lib/markdown-blocks";
import { CodeBlock } from "./code-block";

function textOf(node: ReactNode): string {
  if (typeof node === "string" || typeof node === "number") return String(node);
  if (Array.isArray(node)) return node.map(textOf).join("");
  if (isValidElement<{ children?: ReactNode }>(node)) return textOf(node.props.children);
  return "";
}

const components: Components = {
  a: ({ href, children }) => (
    <a href={href} target="_blank" rel="noopener noreferrer">
      {children}
    </a>
  ),
  img: ({ src, alt }) => {
    const url = typeof src === "string" ? src : "";
    return (
      <a href={url || undefined} target="_blank" rel="noopener noreferrer" className="image-link">
        [image: {alt || url || "no address"}]
      </a>
    );
  },
  pre: ({ children }) => {
    const child = Array.isArray(children) ? children[0] : children;
    let language = "";
    if (isValidElement<{ className?: string }>(child)) {
      const m = /language-([\w+-]+)/.exec(child.props.className ?? "");
      language = m?.[1] ?? "";
    }
    return <CodeBlock code={textOf(child).replace(/\n$/, "")} language={language} />;
  },
};

const remarkPlugins = [remarkGfm];

/** One markdown document parsed and rendered as a whole. */
export const MarkdownDocument = memo(function MarkdownDocument({ text }: { text: string }) {
  return (
    <ReactMarkdown remarkPlugins={remarkPlugins} skipHtml components={components}>
      {text}
    </ReactMarkdown>
  );
});

/** Blocks of `text`, reusing the split made for the previous (shorter) text of this answer. */
function useBlocks(text: string): string[] {
  const state = useRef<MarkdownBlocks | null>(null);
  // Deterministic from (previous state, text): rendering twice gives the same blocks.
  state.current = splitMarkdown(state.current, text);
  return blocksOf(state.current);
}

export const Markdown = memo(function Markdown({ text }: { text: string }) {
  const blocks = useBlocks(text);
  return (
    <div className="markdown">
      {blocks.map((block, i) => (
        // biome-ignore lint/suspicious/noArrayIndexKey: blocks only grow at the end; a settled block keeps its index
        <MarkdownDocument key={i} text={block} />
      ))}
    </div>
  );
});
