/**
 * Safe markdown for model answers: raw HTML is dropped (skipHtml), URLs go
 * through react-markdown's default sanitiser (no javascript:), links open in a
 * new tab with rel="noopener noreferrer", and images are never loaded — they
 * are shown as links to their address.
 */
import { isValidElement, memo, type ReactNode } from "react";
import ReactMarkdown, { type Components } from "react-markdown";
import remarkGfm from "remark-gfm";
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

export const Markdown = memo(function Markdown({ text }: { text: string }) {
  return (
    <div className="markdown">
      <ReactMarkdown remarkPlugins={[remarkGfm]} skipHtml components={components}>
        {text}
      </ReactMarkdown>
    </div>
  );
});
