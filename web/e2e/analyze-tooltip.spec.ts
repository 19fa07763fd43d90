/**
 * The analyze page's token tooltip is shown whole: inside the window and not clipped by the
 * card or the scrolling page pane, for the tokens at the right edge and at the end of the text.
 */
import type { Locator, Page } from "@playwright/test";
import { expect, test } from "./csp";

const PASSWORD = "correct horse battery";
const TEXT =
  "The tooltip of every token should be readable in full, wherever the token sits in the card: " +
  "at the start of a line, in the middle, or right against the right-hand edge of the card, " +
  "and also on the very last line of the analysed text, close to the bottom of the window.";

/** True when the point is covered by `tip` itself (not clipped away, not under something). */
async function coveredByTip(page: Page, tip: Locator, x: number, y: number): Promise<boolean> {
  const handle = await tip.elementHandle();
  return page.evaluate(
    ([el, px, py]) => {
      const hit = document.elementFromPoint(px as number, py as number);
      return hit !== null && (el as Element).contains(hit);
    },
    [handle, x, y] as const,
  );
}

/** Hovers `token` and checks that its whole tooltip is visible. */
async function expectWholeTip(page: Page, token: Locator): Promise<void> {
  await token.hover();
  const tipId = await token.getAttribute("aria-describedby");
  const tip = page.locator(`[id="${tipId}"]`);
  await expect(tip).toBeVisible();
  await expect(tip).toContainText("%");
  const box = await tip.boundingBox();
  const view = page.viewportSize();
  if (!box || !view) throw new Error("no tooltip box or viewport");
  expect(box.x, "left edge inside the window").toBeGreaterThanOrEqual(0);
  expect(box.y, "top edge inside the window").toBeGreaterThanOrEqual(0);
  expect(box.x + box.width, "right edge inside the window").toBeLessThanOrEqual(view.width);
  expect(box.y + box.height, "bottom edge inside the window").toBeLessThanOrEqual(view.height);
  // Inside the rounded corners (8 px radius), which hit-testing leaves out.
  const inset = 10;
  const corners: [number, number][] = [
    [box.x + inset, box.y + inset],
    [box.x + box.width - inset, box.y + inset],
    [box.x + inset, box.y + box.height - inset],
    [box.x + box.width - inset, box.y + box.height - inset],
  ];
  for (const [x, y] of corners) {
    expect(await coveredByTip(page, tip, x, y), `tooltip visible at (${x}, ${y})`).toBe(true);
  }
}

test("the analyze page's token tooltip is never cut off by its card", async ({ page }) => {
  test.setTimeout(150_000);
  await page.setViewportSize({ width: 1024, height: 700 });
  const origin = process.env.E2E_WEB_URL ?? "";
  const email = `tooltip-${Date.now()}@example.com`;
  const signUp = () =>
    page.request.post("/api/auth/sign-up/email", {
      headers: { origin },
      data: { name: "Tooltip", email, password: PASSWORD },
    });
  let res = await signUp();
  // 5 sign-ups a minute from one address, and the whole run signs up from 127.0.0.1.
  if (res.status() === 429) {
    await page.waitForTimeout(Number(res.headers()["retry-after"] ?? "60") * 1000 + 500);
    res = await signUp();
  }
  expect(res.status(), await res.text()).toBe(200);

  await page.goto("/analyze");
  await page.getByLabel("Text").fill(TEXT);
  await page.getByRole("button", { name: "Analyze" }).click();
  const tokens = page.getByTestId("tokens").getByRole("button");
  await expect(page.getByTestId("token-count")).toHaveText(/^[1-9]\d*$/, { timeout: 60_000 });
  // The token furthest right, and the last one (scrolled to the bottom of the window).
  const rights = await tokens.evaluateAll((els) =>
    els.map((el) => el.getBoundingClientRect().right),
  );
  const rightmost = rights.indexOf(Math.max(...rights));
  await expectWholeTip(page, tokens.nth(rightmost));
  const last = tokens.last();
  await last.evaluate((el) => el.scrollIntoView({ block: "end" }));
  await expectWholeTip(page, last);
  // Keyboard focus shows it the same way.
  await page.mouse.move(0, 0);
  await tokens.nth(rightmost).focus();
  await expect(
    page.locator(`[id="${await tokens.nth(rightmost).getAttribute("aria-describedby")}"]`),
  ).toBeVisible();
});
