import { highlight } from "@/lib/highlight";
import { CopyButton } from "./copy-button";

export function CodeBlock({ code, language }: { code: string; language?: string }) {
  const tokens = highlight(code, language);
  return (
    <div className="code-block">
      <div className="code-head">
        <span className="code-lang">{language || "code"}</span>
        <CopyButton text={code} label="Copy code" className="btn btn-small btn-ghost" />
      </div>
      <pre>
        <code>
          {tokens.map((t, i) =>
            t.kind === "plain" ? (
              t.text
            ) : (
              // biome-ignore lint/suspicious/noArrayIndexKey: tokens are positional and never reordered
              <span key={i} className={`tok-${t.kind}`}>
                {t.text}
              </span>
            ),
          )}
        </code>
      </pre>
    </div>
  );
}
