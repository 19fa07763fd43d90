// @vitest-environment jsdom
import { act, render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { controllableStream, conversationJson, wrap } from "../test-kit";
import { ChatView } from "./chat-view";

vi.mock("next/navigation", () => ({ usePathname: () => "/chat" }));

let fetchMock: ReturnType<typeof vi.fn>;
beforeEach(() => {
  fetchMock = vi.fn();
  vi.stubGlobal("fetch", fetchMock);
  window.history.replaceState(null, "", "/chat");
});
afterEach(() => {
  vi.unstubAllGlobals();
});

function route(stream: ReturnType<typeof controllableStream>) {
  fetchMock.mockImplementation(async (url: string, init?: RequestInit) => {
    if (url === "/api/models") return Response.json({ models: [{ id: "gemma" }] });
    if (url === "/api/conversations" && init?.method === "POST") {
      return Response.json({ id: "c1", title: "hello", createdAt: "", updatedAt: "" });
    }
    if (url === "/api/conversations/c1/messages") {
      init?.signal?.addEventListener("abort", () => {
        try {
          stream.close();
        } catch {}
      });
      return stream.response;
    }
    return Response.json({ error: { code: "NOT_FOUND", message: url } }, { status: 404 });
  });
}

describe("ChatView", () => {
  it("creates the conversation and streams tokens into the page", async () => {
    const s = controllableStream();
    route(s);
    render(wrap(<ChatView />));
    await userEvent.type(screen.getByRole("textbox", { name: "Message" }), "hello{Enter}");
    await waitFor(() => expect(window.location.pathname).toBe("/chat/c1"));
    const call = fetchMock.mock.calls.find(([u]) => u === "/api/conversations/c1/messages");
    expect(JSON.parse(String(call?.[1]?.body))).toMatchObject({ content: "hello", maxTokens: 256 });

    act(() => {
      s.send("start", {
        userMessage: { id: "m1", role: "user", content: "hello", createdAt: "" },
        assistantMessageId: "m2",
      });
      s.send("delta", { text: "Hel" });
    });
    await screen.findByText("Hel");
    expect(screen.getByRole("button", { name: "Stop" })).toBeTruthy();
    act(() => s.send("delta", { text: "lo **world**" }));
    await waitFor(() => expect(screen.getByText("world").tagName).toBe("STRONG"));
    act(() => {
      s.send("done", {
        message: { id: "m2", role: "assistant", content: "Hello **world**" },
        finishReason: "stop",
      });
      s.close();
    });
    await screen.findByRole("button", { name: "Regenerate" });
    expect(screen.getByRole("button", { name: "Send" })).toBeTruthy();
    expect(screen.getAllByTestId("msg-assistant")).toHaveLength(1);
  });

  it("Stop aborts the stream and keeps the partial answer marked as stopped", async () => {
    const s = controllableStream();
    route(s);
    render(wrap(<ChatView />));
    await userEvent.type(screen.getByRole("textbox", { name: "Message" }), "hello{Enter}");
    await waitFor(() =>
      expect(fetchMock.mock.calls.some(([u]) => u === "/api/conversations/c1/messages")).toBe(true),
    );
    act(() => {
      s.send("start", { assistantMessageId: "m2" });
      s.send("delta", { text: "partial" });
    });
    await screen.findByText("partial");
    const call = fetchMock.mock.calls.find(([u]) => u === "/api/conversations/c1/messages");
    const signal = call?.[1]?.signal as AbortSignal;
    await userEvent.click(screen.getByRole("button", { name: "Stop" }));
    expect(signal.aborted).toBe(true);
    await screen.findByText("Stopped");
    expect(screen.getByText("partial")).toBeTruthy();
    expect(screen.queryByRole("alert")).toBeNull();
  });

  it("shows a quota error inline with the reset time and a retry", async () => {
    fetchMock.mockImplementation(async (url: string) => {
      if (url === "/api/conversations/c9") return conversationJson("c9", "Old");
      if (url === "/api/conversations/c9/messages") {
        return Response.json(
          { error: { code: "QUOTA_EXCEEDED", message: "Daily token quota reached." } },
          { status: 429, headers: { "retry-after": "60" } },
        );
      }
      return Response.json({ models: [] });
    });
    render(wrap(<ChatView conversationId="c9" />));
    await screen.findByRole("heading", { name: "Old" });
    await userEvent.type(screen.getByRole("textbox", { name: "Message" }), "again{Enter}");
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("Quota reached");
    expect(alert.textContent).toContain("try again in 60 s");
    await userEvent.click(screen.getByRole("button", { name: "Retry" }));
    await waitFor(() =>
      expect(
        fetchMock.mock.calls.filter(([u]) => u === "/api/conversations/c9/messages"),
      ).toHaveLength(2),
    );
    // The failed message is shown once, not duplicated by the retry.
    await waitFor(() => expect(screen.getAllByText("again")).toHaveLength(1));
  });
});
