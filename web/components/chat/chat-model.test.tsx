// @vitest-environment jsdom
import { act, render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { ModelInfo } from "@/lib/types";
import { controllableStream, conversationJson, wrap } from "../test-kit";
import { ChatView } from "./chat-view";

// As Next.js does, the path follows history.replaceState (a new chat becomes /chat/<id>).
vi.mock("next/navigation", () => ({ usePathname: () => window.location.pathname }));

const small: ModelInfo = { id: "small", kind: "chat", state: "ready", default: true };
const large: ModelInfo = { id: "large", kind: "chat", state: "unloaded" };

let fetchMock: ReturnType<typeof vi.fn>;
/** What GET /api/models answers now (tests change it to take a model away). */
let listed: ModelInfo[];
/** Answers a turn; by default an SSE stream the test drives. */
let answerTurn: () => Response;

beforeEach(() => {
  localStorage.clear();
  window.history.replaceState(null, "", "/chat");
  listed = [small, large];
  const stream = controllableStream();
  answerTurn = () => stream.response;
  fetchMock = vi.fn(async (url: string, init?: RequestInit) => {
    if (url === "/api/models") return Response.json({ models: listed });
    if (url === "/api/conversations" && init?.method === "POST") {
      return Response.json({ id: "c1", title: "hello", createdAt: "", updatedAt: "" });
    }
    if (url === "/api/conversations/c1/messages") return answerTurn();
    if (url === "/api/conversations/c9") {
      return conversationJson("c9", "Old", [
        { id: "m1", role: "user", content: "q", createdAt: "", model: "large" },
        { id: "m2", role: "assistant", content: "a", createdAt: "", model: "small" },
      ]);
    }
    return Response.json({ error: { code: "NOT_FOUND", message: url } }, { status: 404 });
  });
  vi.stubGlobal("fetch", fetchMock);
  return () => stream.close();
});
afterEach(() => vi.unstubAllGlobals());

const picker = () => screen.findByRole("combobox", { name: "Model" });
const turnBodies = () =>
  fetchMock.mock.calls
    .filter(([u]) => u === "/api/conversations/c1/messages")
    .map(([, init]) => JSON.parse(String((init as RequestInit).body)) as Record<string, unknown>);

describe("the chat's model", () => {
  it("starts with the default, sends the one picked, and a new chat starts with it", async () => {
    const stream = controllableStream();
    answerTurn = () => stream.response;
    const { unmount } = render(wrap(<ChatView />));
    const select = (await picker()) as HTMLSelectElement;
    await waitFor(() => expect(select.value).toBe("small"));
    await userEvent.selectOptions(select, "large");
    await userEvent.type(screen.getByRole("textbox", { name: "Message" }), "hello{Enter}");
    await waitFor(() => expect(turnBodies()).toHaveLength(1));
    expect(turnBodies()[0]).toMatchObject({ content: "hello", model: "large" });
    // The answer names the model that answered: after a gateway fallback, not the one picked.
    act(() => {
      stream.send("start", { assistantMessageId: "m2" });
      stream.send("delta", { text: "Hi" });
      stream.send("done", {
        message: { id: "m2", role: "assistant", content: "Hi", createdAt: "", model: "small" },
        finishReason: "stop",
      });
      stream.close();
    });
    expect((await screen.findByTestId("answer-model")).textContent).toBe("Answered by small");
    unmount();

    render(wrap(<ChatView />));
    const again = (await picker()) as HTMLSelectElement;
    await waitFor(() => expect(again.value).toBe("large"));
  });

  it("an opened conversation goes on with the model its last question was put to", async () => {
    localStorage.setItem("chat-settings", JSON.stringify({ model: "small" }));
    render(wrap(<ChatView conversationId="c9" />));
    await screen.findByRole("heading", { name: "Old" });
    const select = (await picker()) as HTMLSelectElement;
    await waitFor(() => expect(select.value).toBe("large"));
    expect(screen.getByTestId("answer-model").textContent).toBe("Answered by small");
  });

  it("a model refused to this user keeps the message in the box and falls back with a notice", async () => {
    answerTurn = () =>
      Response.json(
        { error: { code: "MODEL_FORBIDDEN", message: "You may not use the model large." } },
        { status: 403 },
      );
    render(wrap(<ChatView />));
    await userEvent.selectOptions(await picker(), "large");
    listed = [small]; // an admin denied it: the gateway no longer lists it for this user
    const box = screen.getByRole("textbox", { name: "Message" }) as HTMLTextAreaElement;
    await userEvent.type(box, "my long question{Enter}");
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("Model not available");
    expect(alert.textContent).toContain("You may not use the model large.");
    expect(screen.queryByRole("button", { name: "Retry" })).toBeNull();
    await waitFor(() => expect(box.value).toBe("my long question"));
    expect(screen.queryAllByTestId("msg-user")).toHaveLength(0);
    // The list is asked again: the model is gone, the default takes over, and the chat says so.
    expect((await screen.findByText(/large is no longer available to you/)).textContent).toContain(
      "using small instead",
    );
    await waitFor(() => expect(screen.queryByRole("combobox")).toBeNull());
    expect(screen.getByTestId("model-name").textContent).toBe("small");
  });

  it("an unknown model (404) is handled the same way, and the draft can be sent again", async () => {
    let refused = true;
    const stream = controllableStream();
    answerTurn = () =>
      refused
        ? Response.json(
            { error: { code: "MODEL_NOT_FOUND", message: "The model large does not exist" } },
            { status: 404 },
          )
        : stream.response;
    render(wrap(<ChatView />));
    await userEvent.selectOptions(await picker(), "large");
    const box = screen.getByRole("textbox", { name: "Message" }) as HTMLTextAreaElement;
    await userEvent.type(box, "again{Enter}");
    expect((await screen.findByRole("alert")).textContent).toContain(
      "The model large does not exist. Choose another model",
    );
    await waitFor(() => expect(box.value).toBe("again"));
    refused = false;
    await userEvent.selectOptions(await picker(), "small");
    await userEvent.type(box, "{Enter}");
    await waitFor(() => expect(turnBodies()).toHaveLength(2));
    expect(turnBodies()[1]).toMatchObject({ content: "again", model: "small" });
    await waitFor(() => expect(screen.queryByRole("alert")).toBeNull());
    expect(screen.getAllByTestId("msg-user")).toHaveLength(1);
  });

  it("an answer ended because its model was denied meanwhile keeps its text and reloads the list", async () => {
    const stream = controllableStream();
    answerTurn = () => stream.response;
    render(wrap(<ChatView />));
    await userEvent.selectOptions(await picker(), "large");
    await userEvent.type(screen.getByRole("textbox", { name: "Message" }), "hello{Enter}");
    await waitFor(() => expect(turnBodies()).toHaveLength(1));
    const listsBefore = fetchMock.mock.calls.filter(([u]) => u === "/api/models").length;
    listed = [small];
    act(() => {
      stream.send("start", { assistantMessageId: "m2" });
      stream.send("delta", { text: "Partial" });
      // What the gateway sends when an admin denies the model of a call in flight.
      const message =
        'Access ended while the request ran: the model "large" is no longer available to you';
      stream.send("error", { error: { code: "ACCESS_REVOKED", message } });
      stream.close();
    });
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("Not allowed");
    expect(alert.textContent).toContain('the model "large" is no longer available to you');
    expect(screen.getByText("Partial")).toBeTruthy();
    await waitFor(() =>
      expect(fetchMock.mock.calls.filter(([u]) => u === "/api/models").length).toBeGreaterThan(
        listsBefore,
      ),
    );
    expect(await screen.findByText(/large is no longer available to you/)).toBeTruthy();
  });
});
