/**
 * State of one chat view, changed only through `chatReducer`: the conversation, its settled
 * messages, and the answer being streamed (`live`, kept apart so that a delta touches one
 * message and leaves the settled list, and its rendering, alone).
 */
import type { ChatEvent } from "@/lib/chat-stream";
import type { ErrorView } from "@/lib/errors";
import type { Message } from "@/lib/types";
import type { UIMessage } from "./message-item";

export interface Failure {
  view: ErrorView;
  retry: () => void;
  /** "model": refused for its model (not allowed, or not served): the model list may be stale. */
  kind?: "model";
}

/** A message given back to the composer (its turn was refused); `n` tells one from the next. */
export interface Draft {
  text: string;
  n: number;
}

export type LoadState = "loading" | "ready" | "missing" | "error";

export interface ChatState {
  conversationId: string | null;
  title: string;
  /** Settled messages (system messages left out). */
  messages: UIMessage[];
  /** The answer being streamed, shown after `messages`; null between turns. */
  live: UIMessage | null;
  load: LoadState;
  loadError: string | null;
  streaming: boolean;
  failure: Failure | null;
  /** Read out by screen readers when a turn ends. */
  announce: string;
  /** The text of a refused message, back in the composer. */
  draft: Draft | null;
}

export type ChatAction =
  | { type: "loading" }
  | { type: "loaded"; title: string; messages: Message[] }
  | { type: "load-failed"; missing: boolean; error: string }
  | { type: "reset" }
  | { type: "begin"; prepare: (m: UIMessage[]) => UIMessage[]; live: UIMessage }
  | { type: "created"; id: string; title: string }
  | { type: "event"; event: Exclude<ChatEvent, { type: "error" }> }
  | { type: "stopped" }
  | { type: "failed"; failure: Failure; dropLive: boolean }
  | { type: "refused"; failure: Failure; draft: string | null }
  | { type: "end" };

export function initialChatState(conversationId?: string): ChatState {
  return {
    conversationId: conversationId ?? null,
    title: "",
    messages: [],
    live: null,
    load: conversationId ? "loading" : "ready",
    loadError: null,
    streaming: false,
    failure: null,
    announce: "",
    draft: null,
  };
}

const patchLive = (s: ChatState, patch: Partial<UIMessage>): ChatState =>
  s.live ? { ...s, live: { ...s.live, ...patch } } : s;

/** A streamed event applied to the live answer (and the user message the server stored). */
function applyEvent(s: ChatState, event: Exclude<ChatEvent, { type: "error" }>): ChatState {
  switch (event.type) {
    case "start": {
      const user = event.userMessage;
      const messages = user
        ? s.messages.map((m) => (m.role === "user" && m.id.startsWith("local-") ? user : m))
        : s.messages;
      const live = s.live && event.assistantMessageId ? { id: event.assistantMessageId } : {};
      return patchLive({ ...s, messages }, live);
    }
    case "delta":
      return s.live ? patchLive(s, { content: s.live.content + event.text }) : s;
    case "done": {
      const final = event.message;
      const finishReason = event.finishReason ?? final?.finishReason ?? s.live?.finishReason;
      const patch = { ...(final ?? {}), content: final?.content ?? s.live?.content ?? "" };
      return {
        ...patchLive(s, { ...patch, finishReason, streaming: false }),
        announce: "Answer complete.",
      };
    }
  }
}

/** The one place the chat state changes. */
export function chatReducer(s: ChatState, a: ChatAction): ChatState {
  switch (a.type) {
    case "loading":
      return { ...s, load: "loading" };
    case "loaded":
      return {
        ...s,
        title: a.title,
        messages: a.messages.filter((m) => m.role !== "system"),
        load: "ready",
      };
    case "load-failed":
      return a.missing ? { ...s, load: "missing" } : { ...s, load: "error", loadError: a.error };
    case "reset":
      return { ...initialChatState(), announce: s.announce, draft: s.draft };
    case "begin":
      return {
        ...s,
        failure: null,
        streaming: true,
        messages: a.prepare(s.messages),
        live: a.live,
      };
    case "created":
      return { ...s, conversationId: a.id, title: a.title };
    case "event":
      return applyEvent(s, a.event);
    case "stopped":
      return {
        ...patchLive(s, { streaming: false, finishReason: "cancelled" }),
        announce: "Stopped.",
      };
    case "failed":
      return a.dropLive
        ? { ...s, live: null, failure: a.failure }
        : { ...patchLive(s, { streaming: false, finishReason: "error" }), failure: a.failure };
    case "refused": {
      // Nothing reached the server: the message leaves the log and goes back to the composer.
      if (a.draft === null) return { ...s, live: null, failure: a.failure };
      const messages = s.messages.filter((m) => !(m.role === "user" && m.id.startsWith("local-")));
      const draft = { text: a.draft, n: (s.draft?.n ?? 0) + 1 };
      return { ...s, messages, live: null, failure: a.failure, draft };
    }
    case "end": {
      const messages = s.live ? [...s.messages, { ...s.live, streaming: false }] : s.messages;
      return { ...s, messages, live: null, streaming: false };
    }
  }
}
