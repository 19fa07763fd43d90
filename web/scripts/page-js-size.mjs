// Sums the gzipped size of every JavaScript file a page loads (its <script src>) after
// `npm run build`. Pages are rendered per request (each carries its CSP nonce), so the built
// app is started on a free loopback port and each page is fetched from it.
// `noModule` scripts (legacy polyfills) are skipped: modern browsers never load them.
// Usage: node scripts/page-js-size.mjs [page ...]   (default: chat)
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

const root = new URL("..", import.meta.url).pathname;
const pages = process.argv.slice(2).length ? process.argv.slice(2) : ["chat"];

/** A port nothing listens on right now. */
const freePort = () =>
  new Promise((resolve) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });

const port = await freePort();
// The pages' HTML does not need the gateway: point it at a port nothing listens on.
const server = spawn(process.execPath, ["server.mjs", "-p", String(port), "-H", "127.0.0.1"], {
  cwd: root,
  env: { ...process.env, GATEWAY_URL: `http://127.0.0.1:${await freePort()}` },
  stdio: "ignore",
});
const base = `http://127.0.0.1:${port}`;

async function pageHtml(page) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const res = await fetch(`${base}/${page}`);
      return await res.text();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

let worst = 0;
try {
  for (const page of pages) {
    const html = await pageHtml(page);
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
} finally {
  server.kill();
}
const LIMIT_KB = 250;
if (worst / 1024 > LIMIT_KB) {
  console.error(`over the ${LIMIT_KB} kB gzipped budget`);
  process.exit(1);
}
