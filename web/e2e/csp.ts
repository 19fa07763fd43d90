/**
 * Content-Security-Policy violations seen by the browser, for the e2e suite to fail on.
 *
 * Every page the suite opens runs under the web app's CSP (proxy.ts); a violation means the app
 * needs something its own policy blocks — a broken page for users. Both sources are watched:
 * the `securitypolicyviolation` DOM event (reported through a binding) and Chromium's console
 * errors about the policy (they also cover headers it could not parse).
 */
import {
  type BrowserContext,
  test as base,
  type ConsoleMessage,
  expect,
  type Page,
} from "@playwright/test";

const BINDING = "__e2eCspViolation";

/** Starts recording the context's CSP violations into `seen` (a new list by default); returns it. */
export async function watchCsp(context: BrowserContext, seen: string[] = []): Promise<string[]> {
  await context.exposeBinding(BINDING, ({ page }: { page: Page }, text: string) => {
    seen.push(`${page.url()}: ${text}`);
  });
  await context.addInitScript((binding: string) => {
    document.addEventListener("securitypolicyviolation", (e) => {
      const report = (window as unknown as Record<string, (text: string) => void>)[binding];
      report?.(
        `${e.effectiveDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`,
      );
    });
  }, BINDING);
  context.on("console", (message: ConsoleMessage) => {
    const text = message.text();
    if (/Content[- ]Security[- ]Policy|Permissions-Policy/i.test(text)) {
      seen.push(`${message.page()?.url() ?? "?"}: console ${message.type()}: ${text}`);
    }
  });
  return seen;
}

/** Fails with every violation recorded so far, and clears the list for the next test. */
export function expectNoCspViolations(seen: string[]): void {
  const found = seen.splice(0);
  expect(found, "Content-Security-Policy violations in the browser").toEqual([]);
}

/** Playwright's `test` whose `context` (and so `page`) fails the test on any CSP violation. */
export const test = base.extend({
  context: async ({ context }, use) => {
    const seen = await watchCsp(context);
    await use(context);
    expectNoCspViolations(seen);
  },
});

export { expect };
