// Sums the gzipped size of every JavaScript file a prerendered page loads
// (the <script src> of .next/server/app/<page>.html) after `npm run build`.
// `noModule` scripts (legacy polyfills) are skipped: modern browsers never load them.
// Usage: node scripts/page-js-size.mjs [page ...]   (default: chat)
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

const root = new URL("..", import.meta.url).pathname;
const pages = process.argv.slice(2).length ? process.argv.slice(2) : ["chat"];
let worst = 0;
for (const page of pages) {
  const html = readFileSync(join(root, ".next/server/app", `${page}.html`), "utf8");
  const tags = html.match(/<script[^>]*\ssrc="[^"]+\.js"[^>]*>/g) ?? [];
  const files = [
    ...new Set(
      tags
        .filter((t) => !/\snoModule/i.test(t))
        .map((t) => /src="([^"]+)"/.exec(t)?.[1] ?? "")
        .filter((src) => src.startsWith("/_next/static/")),
    ),
  ];
  let raw = 0;
  let gz = 0;
  for (const f of files) {
    const buf = readFileSync(join(root, ".next", f.replace(/^\/_next\//, "")));
    raw += buf.length;
    gz += gzipSync(buf, { level: 9 }).length;
  }
  worst = Math.max(worst, gz);
  console.log(
    `/${page}: ${files.length} scripts, ${(raw / 1024).toFixed(1)} kB raw, ${(gz / 1024).toFixed(1)} kB gzipped`,
  );
}
const LIMIT_KB = 250;
if (worst / 1024 > LIMIT_KB) {
  console.error(`over the ${LIMIT_KB} kB gzipped budget`);
  process.exit(1);
}
