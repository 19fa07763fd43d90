// @vitest-environment jsdom
import { render } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { Markdown } from "./markdown";

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
