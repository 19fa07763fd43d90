/**
 * A tiny, local syntax highlighter for code blocks in answers: strings,
 * comments, numbers and common keywords of C-like languages, Python, shell
 * and SQL. No dependency, no network — good enough for a chat transcript.
 */

export type TokenKind = "plain" | "comment" | "string" | "number" | "keyword";

export interface CodeToken {
  kind: TokenKind;
  text: string;
}

const KEYWORDS = new Set(
  (
    "abstract as async await break case catch class const continue def default del do elif else " +
    "enum export extends false final finally fn for from func function go if impl import in " +
    "interface is lambda let match mod mut new nil none not null or and package pass private " +
    "protected pub public raise return self static struct super switch this throw true try type " +
    "typeof use var void while with yield True False None echo fi then done esac " +
    "select insert update delete where join on group by order limit into values create table"
  ).split(" "),
);

const HASH_COMMENT = new Set([
  "python",
  "py",
  "sh",
  "bash",
  "shell",
  "zsh",
  "ruby",
  "rb",
  "yaml",
  "yml",
  "toml",
  "r",
  "perl",
]);

export function highlight(code: string, language = ""): CodeToken[] {
  const lang = language.toLowerCase();
  const hash = HASH_COMMENT.has(lang);
  const sqlDash = lang === "sql" || lang === "lua" || lang === "haskell";
  const pattern = new RegExp(
    [
      hash ? "(#[^\\n]*)" : "(\\/\\/[^\\n]*|\\/\\*[\\s\\S]*?(?:\\*\\/|$))",
      sqlDash ? "|(--[^\\n]*)" : "|(\\b\\B)",
      "|(\"(?:[^\"\\\\\\n]|\\\\.)*\"?|'(?:[^'\\\\\\n]|\\\\.)*'?|`(?:[^`\\\\]|\\\\.)*`?)",
      "|(\\b\\d[\\d_]*(?:\\.\\d+)?(?:[eE][+-]?\\d+)?\\b|\\b0x[0-9a-fA-F]+\\b)",
      "|([A-Za-z_][A-Za-z0-9_]*)",
    ].join(""),
    "g",
  );
  const out: CodeToken[] = [];
  const push = (kind: TokenKind, text: string) => {
    if (!text) return;
    const last = out[out.length - 1];
    if (last && last.kind === kind) last.text += text;
    else out.push({ kind, text });
  };
  let index = 0;
  for (const m of code.matchAll(pattern)) {
    const at = m.index ?? 0;
    push("plain", code.slice(index, at));
    if (m[1] || m[2]) push("comment", m[0]);
    else if (m[3]) push("string", m[0]);
    else if (m[4]) push("number", m[0]);
    else push(KEYWORDS.has(m[0]) ? "keyword" : "plain", m[0]);
    index = at + m[0].length;
  }
  push("plain", code.slice(index));
  return out;
}
