import { describe, expect, it } from "vitest";
import { type ChatState, chatReducer, initialChatState } from "./chat-state";
import type { UIMessage } from "./message-item";

const user: UIMessage = { id: "local-u-1", role: "user", content: "hi", createdAt: "" };
const live: UIMessage = {
  id: "local-a-1",
  role: "assistant",
  content: "",
  createdAt: "",
  streaming: true,
};

function begun(): ChatState {
  return chatReducer(initialChatState(), { type: "begin", prepare: (m) => [...m, user], live });
}

describe("chatReducer", () => {
  it("streams into the live answer and leaves the settled messages untouched", () => {
    let s = begun();
    const settled = s.messages;
    s = chatReducer(s, { type: "event", event: { type: "delta", text: "Hel" } });
    s = chatReducer(s, { type: "event", event: { type: "delta", text: "lo" } });
    expect(s.live?.content).toBe("Hello");
    expect(s.messages).toBe(settled);
    expect(s.streaming).toBe(true);
  });

  it("takes the server's ids on start and settles the answer at the end", () => {
    let s = begun();
    const stored = { id: "m1", role: "user" as const, content: "hi", createdAt: "t" };
    s = chatReducer(s, {
      type: "event",
      event: { type: "start", userMessage: stored, assistantMessageId: "m2" },
    });
    expect(s.messages).toEqual([stored]);
    expect(s.live?.id).toBe("m2");
    s = chatReducer(s, { type: "event", event: { type: "done", finishReason: "length" } });
    expect(s.announce).toBe("Answer complete.");
    s = chatReducer(s, { type: "end" });
    expect(s.live).toBeNull();
    expect(s.streaming).toBe(false);
    expect(s.messages.map((m) => [m.id, m.finishReason, m.streaming])).toEqual([
      ["m1", undefined, undefined],
      ["m2", "length", false],
    ]);
  });

  it("marks a stopped answer cancelled; a failure before the start drops the empty answer", () => {
    const stopped = chatReducer(chatReducer(begun(), { type: "stopped" }), { type: "end" });
    expect(stopped.messages.at(-1)?.finishReason).toBe("cancelled");
    expect(stopped.announce).toBe("Stopped.");
    const failure = { view: { title: "t", detail: "d", retryable: true }, retry: () => {} };
    const failed = chatReducer(chatReducer(begun(), { type: "failed", failure, dropLive: true }), {
      type: "end",
    });
    expect(failed.messages).toEqual([user]);
    expect(failed.failure).toBe(failure);
  });
});
