import { describe, expect, it } from "vitest";
import { highlight } from "./highlight";

describe("highlight", () => {
  it("marks keywords, strings, numbers and comments and keeps the text intact", () => {
    const code = 'const x = "a//b"; // note\nreturn 42;';
    const toks = highlight(code, "js");
    expect(toks.map((t) => t.text).join("")).toBe(code);
    expect(toks).toContainEqual({ kind: "keyword", text: "const" });
    expect(toks).toContainEqual({ kind: "string", text: '"a//b"' });
    expect(toks).toContainEqual({ kind: "comment", text: "// note" });
    expect(toks).toContainEqual({ kind: "number", text: "42" });
  });

  it("uses # comments for Python and shell", () => {
    const toks = highlight("def f(): # hi\n  pass", "python");
    expect(toks).toContainEqual({ kind: "comment", text: "# hi" });
    expect(toks).toContainEqual({ kind: "keyword", text: "def" });
  });
});
