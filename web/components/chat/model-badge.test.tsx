// @vitest-environment jsdom
import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { ModelBadge } from "./model-badge";

describe("ModelBadge", () => {
  it("says a base model continues text and how to get an assistant", () => {
    render(<ModelBadge models={[{ id: "gemma-3-270m", kind: "base" }]} selected="" />);
    expect(screen.getByText("gemma-3-270m").textContent).toBeTruthy();
    expect(screen.getByText("base model: continues text").textContent).toBeTruthy();
    expect(screen.getByText("LLM_MODEL_PATH").textContent).toBeTruthy();
    expect(screen.getByText(/instruction-tuned GGUF/).textContent).toBeTruthy();
  });

  it("shows the chosen model, and no hint for a model with a chat template", () => {
    render(
      <ModelBadge
        models={[
          { id: "gemma-3-270m", kind: "base" },
          { id: "qwen-instruct", kind: "chat" },
        ]}
        selected="qwen-instruct"
      />,
    );
    expect(screen.getByText("qwen-instruct").textContent).toBeTruthy();
    expect(screen.queryByText("base model: continues text")).toBeNull();
    expect(screen.queryByText("LLM_MODEL_PATH")).toBeNull();
  });

  it("shows nothing before the models are known", () => {
    const { container } = render(<ModelBadge models={[]} selected="" />);
    expect(container.innerHTML).toBe("");
  });
});
