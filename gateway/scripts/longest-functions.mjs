// Lists the longest functions of src/ (lines from the function's first to its last line),
// measured on the TypeScript AST: `node scripts/longest-functions.mjs [count]`.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import ts from "typescript";

const files = readdirSync("src", { recursive: true })
  .filter((f) => f.endsWith(".ts"))
  .map((f) => join("src", f));

const found = [];
for (const file of files) {
  const source = ts.createSourceFile(
    file,
    readFileSync(file, "utf8"),
    ts.ScriptTarget.Latest,
    true,
  );
  const visit = (node) => {
    if (ts.isFunctionLike(node) && "body" in node && node.body) {
      const line = (pos) => source.getLineAndCharacterOfPosition(pos).line;
      const lines = line(node.getEnd()) - line(node.getStart(source)) + 1;
      const name = node.name?.getText(source) ?? ts.SyntaxKind[node.kind];
      found.push({ lines, where: `${file}:${line(node.getStart(source)) + 1}`, name });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
}
found.sort((a, b) => b.lines - a.lines);
for (const f of found.slice(0, Number(process.argv[2] ?? 15)))
  console.log(`${String(f.lines).padStart(4)}  ${f.where}  ${f.name}`);
