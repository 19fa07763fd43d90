// @vitest-environment jsdom
import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { AnalyzeResultView } from "./analyze-view";
import { bucket, pct, placeTip } from "./token-view";

describe("Analyze result", () => {
  it("colours tokens by probability and describes alternatives and classification", () => {
    render(
      <AnalyzeResultView
        result={{
          model: "gemma",
          token_count: 2,
          perplexity: 12.345,
          tokens: [
            { token: "Hello", token_id: 1, logprob: null, top_logprobs: [] },
            {
              token: " world",
              token_id: 2,
              logprob: Math.log(0.5),
              top_logprobs: [{ token: " there", logprob: Math.log(0.2) }],
            },
          ],
          classification: [{ label: "greeting", probability: 0.9 }],
        }}
      />,
    );
    expect(screen.getByTestId("perplexity").textContent).toBe("12.35");
    const tok = screen.getByRole("button", { name: "world" });
    expect(tok.className).toContain("p-high");
    const tipId = tok.getAttribute("aria-describedby") ?? "";
    expect(document.getElementById(tipId)?.textContent).toContain("·there 20.0%");
    expect(screen.getByText("90.0%")).toBeTruthy();
    expect(bucket(Math.log(0.01))).toBe("low");
    expect(bucket(null)).toBe("none");
    expect([pct(Math.log(0.5)), pct(Math.log(0.0012)), pct(Math.log(1e-7))]).toEqual([
      "50.0%",
      "0.12%",
      "<0.01%",
    ]);
  });
});

describe("placeTip", () => {
  const view = { width: 400, height: 300 };
  const rect = (left: number, top: number) => new DOMRect(left, top, 20, 18);
  it("puts the tooltip below the token, inside the window", () => {
    expect(placeTip(rect(10, 20), { width: 200, height: 100 }, view)).toEqual({
      left: 10,
      top: 42,
    });
  });
  it("moves it left from a token at the right edge and above one at the bottom", () => {
    expect(placeTip(rect(390, 250), { width: 200, height: 100 }, view)).toEqual({
      left: 192,
      top: 146,
    });
  });
});
