// @vitest-environment jsdom
import { render } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { Markdown, MarkdownDocument } from "./markdown";

describe("Markdown", () => {
  it("drops raw HTML and scripts", () => {
    const { container } = render(
      <Markdown
        text={'Hello <b>bold</b> <script>alert(1)</script><img src="x" onerror="alert(1)">'}
      />,
    );
    expect(container.querySelector("script, b, img")).toBeNull();
    expect(container.textContent).toContain("Hello");
  });

  it("opens links in a new tab without referrer and neutralises javascript: URLs", () => {
    const { container } = render(
      <Markdown text={"[ok](https://example.com) [bad](javascript:alert(1))"} />,
    );
    const links = [...container.querySelectorAll("a")];
    expect(links[0]?.getAttribute("href")).toBe("https://example.com");
    expect(links[0]?.getAttribute("target")).toBe("_blank");
    expect(links[0]?.getAttribute("rel")).toBe("noopener noreferrer");
    expect(links[1]?.getAttribute("href") ?? "").not.toMatch(/javascript/i);
  });

  it("never loads remote images: they become links", () => {
    const { container } = render(<Markdown text={"![a cat](https://example.com/cat.png)"} />);
    expect(container.querySelector("img")).toBeNull();
    const a = container.querySelector("a");
    expect(a?.getAttribute("href")).toBe("https://example.com/cat.png");
    expect(a?.textContent).toBe("[image: a cat]");
  });

  it("renders fenced code highlighted with a copy button, and GFM tables", () => {
    const { container, getByRole } = render(
      <Markdown text={"```js\nconst a = 1;\n```\n\n| x | y |\n|---|---|\n| 1 | 2 |"} />,
    );
    expect(container.querySelector("pre code .tok-keyword")?.textContent).toBe("const");
    expect(container.querySelector(".code-lang")?.textContent).toBe("js");
    expect(getByRole("button", { name: "Copy code" })).toBeTruthy();
    expect(container.querySelector("table td")?.textContent).toBe("1");
  });
});

describe("Markdown, streamed", () => {
  const answer = [
    "Setext heading\n==============\n\n",
    "Intro with **bold**, `code` and a [link](https://example.com).\n",
    "#hashtag line\n\n",
    "3. third\n4. fourth\n\n   continued\n\n",
    "- loose\n\n- list\n  - nested\n\n",
    "> quote\nlazy line\n\n",
    "| a | b |\n| - | - |\n| 1 | 2 |\nrow\n\n",
    "    indented code\n\n",
    "```python\ndef f():\n\n    return 1\n```\n",
    "***\nLast paragraph[^1].\n\n[^1]: A footnote.\n",
  ].join("");

  it("renders every prefix of an answer exactly as the whole prefix rendered at once", () => {
    const normalise = (html: string) => html.replace(/>\s+</g, "><");
    const { container, rerender } = render(<Markdown text="" />);
    // Every line end (where blocks settle) and every fifth character in between.
    for (let i = 1; i <= answer.length; i += 1) {
      if (answer[i - 1] !== "\n" && i % 5 !== 0 && i !== answer.length) continue;
      const prefix = answer.slice(0, i);
      rerender(<Markdown text={prefix} />);
      const whole = render(
        <div className="markdown">
          <MarkdownDocument text={prefix} />
        </div>,
        { container: document.createElement("div") },
      );
      expect(normalise(container.innerHTML), `prefix of ${i} characters`).toBe(
        normalise(whole.container.innerHTML),
      );
      whole.unmount();
    }
  }, 30_000);
});
