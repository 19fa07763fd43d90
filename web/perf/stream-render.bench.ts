/**
 * Main-thread cost of one streamed delta as a chat answer grows ("long answers in the
 * browser stay cheap"). The chat page of the built app gets a 2,000-token markdown answer one
 * token at a time; each delta is pushed, rendered and painted before the next one.
 *
 * Per window of deltas it prints:
 * - main ms/delta: the renderer main thread's CPU time (CDP `Performance.getMetrics`
 *   TaskDuration in thread ticks: script, style, layout, paint; not inflated by other
 *   processes on a busy machine) over the window, divided by its deltas; then the script,
 *   style and layout parts of it;
 * - commit p50/p95: `performance.measure` from pushing the delta into the stream to the DOM
 *   mutation that shows it (stream read, React render and commit).
 *
 * The first row ("idle") is the same loop with nothing pushed: the harness's own cost per step.
 *
 *   npm run build && npm run bench:render          (PERF_TOKENS=2000, PERF_WINDOW=100)
 */
import { type CDPSession, expect, type Page, test } from "@playwright/test";

const TOKENS = Number(process.env.PERF_TOKENS ?? 2000);
const WINDOW = Number(process.env.PERF_WINDOW ?? 100);

/** A long, varied answer: headings, paragraphs with inline markup, lists, code blocks. */
function answer(): string {
  const words =
    "the model reads each token and the page shows it while the answer grows longer with every section".split(
      " ",
    );
  const parts: string[] = [];
  for (let s = 1; parts.join("").length < 40_000; s++) {
    parts.push(`## Section ${s}\n\n`);
    const para = Array.from({ length: 60 }, (_, i) => words[(i * 7 + s) % words.length]).join(" ");
    parts.push(`${para.replace("token", "**token**").replace("page", "`page`")}.\n\n`);
    parts.push(`- first point of ${s}\n- second point with *emphasis*\n- third point\n\n`);
    if (s % 3 === 0) {
      parts.push("```ts\n");
      for (let l = 0; l < 8; l++) parts.push(`const value${l} = compute(${l}, "s${s}"); // step\n`);
      parts.push("```\n\n");
    }
  }
  return parts.join("");
}

/** ~4 characters a token, whitespace attached to the following word, like a BPE tokenizer. */
function tokens(text: string, n: number): string[] {
  const out = text.match(/\s*\S{1,4}/g) ?? [];
  expect(out.length).toBeGreaterThanOrEqual(n);
  return out.slice(0, n);
}

/** Answers the page's API calls; the answer stream is a ReadableStream the test feeds. */
async function fakeGateway(page: Page) {
  const json = (body: unknown) => ({
    status: 200,
    contentType: "application/json",
    body: JSON.stringify(body),
  });
  const now = new Date().toISOString();
  await page.route("**/api/**", (route) => {
    const url = new URL(route.request().url());
    const method = route.request().method();
    if (url.pathname === "/api/user") {
      return route.fulfill(
        json({
          id: "u1",
          email: "perf@example.com",
          name: "Perf",
          role: "user",
          twoFactorEnabled: false,
          createdAt: now,
        }),
      );
    }
    if (url.pathname === "/api/models")
      return route.fulfill(json({ models: [{ id: "m", kind: "chat" }] }));
    if (url.pathname === "/api/conversations" && method === "POST") {
      return route.fulfill(json({ id: "c1", title: "Perf", createdAt: now, updatedAt: now }));
    }
    if (url.pathname === "/api/conversations") return route.fulfill(json({ conversations: [] }));
    return route.fulfill({
      status: 404,
      contentType: "application/json",
      body: '{"error":{"code":"NOT_FOUND","message":"no"}}',
    });
  });
  // The SSE answer: fetch() of the messages route returns a stream this page-side hook feeds.
  await page.addInitScript(() => {
    const enc = new TextEncoder();
    let ctl: ReadableStreamDefaultController<Uint8Array> | undefined;
    let opened: () => void = () => {};
    const open = new Promise<void>((resolve) => {
      opened = resolve;
    });
    const send = (event: string, data: unknown) =>
      ctl?.enqueue(enc.encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`));
    const realFetch = window.fetch.bind(window);
    window.fetch = (input, init) => {
      const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
      if (!/\/api\/conversations\/[^/]+\/messages$/.test(url)) return realFetch(input, init);
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          ctl = c;
          send("start", { assistantMessageId: "a1" });
          opened();
        },
      });
      return Promise.resolve(
        new Response(body, { headers: { "content-type": "text/event-stream" } }),
      );
    };
    const log = () => document.querySelector(".chat-log");
    /** Pushes each delta, waits for the DOM to show it and for the next frame to be painted. */
    const run = async (texts: string[], idle: boolean) => {
      const commits: number[] = [];
      await open;
      for (const text of texts) {
        const target = log();
        if (!target) throw new Error("no chat log");
        // A delta that changes nothing on the page (e.g. an opening code fence) shows no mutation.
        let stop = () => {};
        const shown = new Promise<boolean>((resolve) => {
          const mo = new MutationObserver(() => resolve(true));
          mo.observe(target, { subtree: true, childList: true, characterData: true });
          const timer = setTimeout(() => resolve(false), 1000);
          stop = () => {
            mo.disconnect();
            clearTimeout(timer);
          };
        });
        performance.mark("delta-pushed");
        if (!idle) send("delta", { text });
        const changed = idle ? false : await shown;
        stop();
        if (changed) commits.push(performance.measure("delta-shown", "delta-pushed").duration);
        performance.clearMarks();
        performance.clearMeasures();
        await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
      }
      return commits;
    };
    const end = () => {
      send("done", { finishReason: "stop" });
      ctl?.close();
    };
    Object.assign(window, { __perf: { run, end } });
  });
}

const METRICS = ["TaskDuration", "ScriptDuration", "RecalcStyleDuration", "LayoutDuration"];

/** Cumulative main-thread seconds: all tasks, script, style, layout. */
async function mainThread(cdp: CDPSession): Promise<number[]> {
  const { metrics } = await cdp.send("Performance.getMetrics");
  return METRICS.map((name) => metrics.find((m) => m.name === name)?.value ?? 0);
}

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0;
};

test("main-thread time per streamed delta up to a 2,000-token answer", async ({ page }) => {
  const deltas = tokens(answer(), TOKENS);
  await fakeGateway(page);
  await page.goto("/chat");
  const box = page.getByRole("textbox", { name: "Message" });
  await box.fill("Write a long answer");
  await box.press("Enter");
  await expect(page.getByTestId("msg-assistant")).toBeVisible();
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Performance.enable", { timeDomain: "threadTicks" });

  const rows: string[] = [];
  let chars = 0;
  const measure = async (batch: string[], idle: boolean) => {
    const before = await mainThread(cdp);
    const commits = await page.evaluate(
      ([texts, idle]) =>
        (
          window as unknown as { __perf: { run: (t: string[], i: boolean) => Promise<number[]> } }
        ).__perf.run(texts, idle),
      [batch, idle] as const,
    );
    const after = await mainThread(cdp);
    const perDelta = after.map((v, i) =>
      (((v - (before[i] ?? 0)) * 1000) / batch.length).toFixed(2),
    );
    return { perDelta, commits };
  };
  const cols = (xs: string[]) => xs.map((x, i) => x.padStart(i === 0 ? 14 : 8)).join("");
  const idle = await measure(deltas.slice(0, WINDOW), true);
  rows.push(`  idle       -${cols(idle.perDelta)}          -          -`);
  for (let at = 0; at < deltas.length; at += WINDOW) {
    const batch = deltas.slice(at, at + WINDOW);
    const { perDelta, commits } = await measure(batch, false);
    chars += batch.join("").length;
    const commit = [0.5, 0.95].map((q) => quantile(commits, q).toFixed(2).padStart(11)).join("");
    rows.push(
      `${String(at + batch.length).padStart(6)} ${String(chars).padStart(7)}${cols(perDelta)}${commit}`,
    );
  }
  await page.evaluate(() => (window as unknown as { __perf: { end: () => void } }).__perf.end());
  await expect(page.getByRole("button", { name: "Regenerate" })).toBeVisible();
  console.log(`[bench:render] ${deltas.length} deltas, ${WINDOW} per window`);
  console.log(" token   chars  main ms/delta  script   style  layout commit p50 commit p95");
  for (const r of rows) console.log(r);
});
