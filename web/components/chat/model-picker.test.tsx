// @vitest-environment jsdom
import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import type { ModelInfo } from "@/lib/types";
import { ModelPicker, type ModelPickerProps } from "./model-picker";

const gemma: ModelInfo = { id: "gemma-3-270m", kind: "base", state: "ready" };
const qwen: ModelInfo = { id: "qwen-instruct", kind: "chat", state: "loading" };

function baseProps(): ModelPickerProps {
  return {
    models: [gemma],
    error: null,
    onRetry: () => {},
    value: "gemma-3-270m",
    onChange: () => {},
    notice: null,
    disabled: false,
    isAdmin: false,
  };
}

const picker = (props: Partial<ModelPickerProps>) =>
  render(<ModelPicker {...baseProps()} {...props} />);

describe("ModelPicker", () => {
  it("shows the one model by name, without a choice to make", () => {
    picker({});
    expect(screen.getByTestId("model-name").textContent).toBe("gemma-3-270m");
    expect(screen.queryByRole("combobox")).toBeNull();
  });

  it("offers every listed model, labelled with kind and state, and reports a choice", async () => {
    const onChange = vi.fn();
    picker({ models: [gemma, qwen], onChange });
    const select = screen.getByRole("combobox", { name: "Model" }) as HTMLSelectElement;
    expect([...select.options].map((o) => o.textContent)).toEqual([
      "gemma-3-270m · base model",
      "qwen-instruct · loading",
    ]);
    expect(select.value).toBe("gemma-3-270m");
    await userEvent.selectOptions(select, "qwen-instruct");
    expect(onChange).toHaveBeenCalledWith("qwen-instruct");
  });

  it("says what a base model does, and to pick a chat model when one is listed", () => {
    picker({ models: [gemma, qwen] });
    const note = screen.getByTestId("base-model-note").textContent ?? "";
    expect(note).toContain("gemma-3-270m is a base model: it continues the text you write");
    expect(note).toContain("pick a chat model");
  });

  it("sends an admin to the Models page and a user to an admin when no chat model exists", () => {
    const { unmount } = picker({ isAdmin: true });
    expect(screen.getByRole("link", { name: "Models" }).getAttribute("href")).toBe("/admin/models");
    unmount();
    picker({ isAdmin: false });
    expect(screen.getByTestId("base-model-note").textContent).toContain("ask an administrator");
    expect(screen.queryByRole("link")).toBeNull();
  });

  it("has no base-model line for a chat model, and shows a state that is not ready", () => {
    picker({ models: [gemma, qwen], value: "qwen-instruct" });
    expect(screen.queryByTestId("base-model-note")).toBeNull();
    expect(screen.getByTestId("model-state").textContent).toBe("loading");
  });

  it("shows the notice of a model that went away", () => {
    picker({ notice: "big is no longer available to you: using gemma-3-270m instead." });
    expect(screen.getByRole("status").textContent).toContain("big is no longer available");
  });

  it("says when the list is loading, failed (with a retry) or empty", async () => {
    const { rerender } = picker({ models: null });
    expect(screen.getByText("Loading models…")).toBeTruthy();
    const onRetry = vi.fn();
    const props = { ...baseProps(), models: null, error: "Connection lost", onRetry };
    rerender(<ModelPicker {...props} />);
    await userEvent.click(screen.getByRole("button", { name: "Retry" }));
    expect(onRetry).toHaveBeenCalled();
    rerender(<ModelPicker {...baseProps()} models={[]} value="" />);
    expect(screen.getByText(/No model is available to your account/)).toBeTruthy();
  });

  it("can be disabled (while the conversation loads)", () => {
    picker({ models: [gemma, qwen], disabled: true });
    expect((screen.getByRole("combobox") as HTMLSelectElement).disabled).toBe(true);
  });
});
