/**
 * How long a streamed token takes from reaching the browser to being on the page, measured
 * from outside the app: the network side from the DevTools protocol's `Network.dataReceived`
 * events of the chat's SSE request, the page side from `performance.mark`s a MutationObserver
 * (installed by the test) sets when the chat log changes. Both clocks are the same monotonic
 * clock; the fetch's resource-timing entry gives the page's offset to it.
 */
import type { Page } from "@playwright/test";

const MESSAGES = /\/api\/conversations\/[^/]+\/messages$/;
const MARK = "e2e-chat-log-changed";

export interface TokenLatency {
  /** Network chunks of the answer seen by the browser. */
  chunks: number;
  /** DOM updates of the chat log while it streamed. */
  updates: number;
  /** Per chunk that changed the page: ms from its arrival to that change, ascending. */
  gaps: number[];
}

/** The chat request's `requestStart` and the DOM-change marks, in the page's clock. */
function pageSide(page: Page) {
  return page.evaluate(
    ({ mark, pattern }) => {
      const fetchEntry = performance
        .getEntriesByType("resource")
        .findLast((e) => new RegExp(pattern).test(new URL(e.name).pathname));
      return {
        requestStart: (fetchEntry as PerformanceResourceTiming | undefined)?.requestStart,
        marks: performance.getEntriesByName(mark).map((m) => m.startTime),
      };
    },
    { mark: MARK, pattern: MESSAGES.source },
  );
}

/** Starts watching; call before sending the message, `finish()` after the answer is done. */
export async function watchTokenLatency(
  page: Page,
): Promise<{ finish: () => Promise<TokenLatency> }> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Network.enable");
  let requestId: string | undefined;
  let sendStart: number | undefined;
  const arrivals: number[] = [];
  cdp.on("Network.requestWillBeSent", (e) => {
    if (e.request.method === "POST" && MESSAGES.test(e.request.url)) requestId = e.requestId;
  });
  cdp.on("Network.responseReceived", (e) => {
    const t = e.response.timing;
    if (e.requestId === requestId && t) sendStart = t.requestTime * 1000 + t.sendStart;
  });
  cdp.on("Network.dataReceived", (e) => {
    if (e.requestId === requestId) arrivals.push(e.timestamp * 1000);
  });
  await page.evaluate((mark) => {
    performance.clearMarks(mark);
    const log = document.querySelector(".chat-log");
    if (!log) throw new Error("no chat log on the page");
    new MutationObserver(() => performance.mark(mark)).observe(log, {
      subtree: true,
      childList: true,
      characterData: true,
    });
  }, MARK);

  const finish = async (): Promise<TokenLatency> => {
    await cdp.detach();
    // The fetch's resource-timing entry appears once its body has ended: wait for it.
    let page_ = await pageSide(page);
    for (let i = 0; i < 50 && page_.requestStart === undefined; i++) {
      await page.waitForTimeout(100);
      page_ = await pageSide(page);
    }
    if (sendStart === undefined || page_.requestStart === undefined) {
      throw new Error("the chat request's timing was not seen");
    }
    // Monotonic ms -> the page's performance.now() ms.
    const offset = page_.requestStart - sendStart;
    // A chunk's update is the first change of the chat log before the next chunk arrives; a
    // chunk with nothing to show (the start event, an empty token, a keep-alive) has none.
    const at = arrivals.map((a) => a + offset);
    const gaps: number[] = [];
    at.forEach((arrived, i) => {
      const next = at[i + 1] ?? Number.POSITIVE_INFINITY;
      const shown = page_.marks.find((m) => m >= arrived && m < next);
      if (shown !== undefined) gaps.push(shown - arrived);
    });
    return {
      chunks: arrivals.length,
      updates: page_.marks.length,
      gaps: gaps.sort((x, y) => x - y),
    };
  };
  return { finish };
}
