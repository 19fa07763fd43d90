"use client";

import { usePathname } from "next/navigation";
import {
  type Dispatch,
  type RefObject,
  useCallback,
  useEffect,
  useReducer,
  useRef,
  useState,
} from "react";
import { ApiError, api } from "@/lib/api";
import { type ChatEvent, streamChat } from "@/lib/chat-stream";
import { describeError, isModelError } from "@/lib/errors";
import type { SendMessageBody } from "@/lib/types";
import { type ChatAction, type ChatState, chatReducer, initialChatState } from "./chat-state";
import type { UIMessage } from "./message-item";
import type { ChatSettings } from "./settings";

let localSeq = 0;
const localId = (prefix: string) => `local-${prefix}-${++localSeq}`;
const nowIso = () => new Date().toISOString();

type Prepare = (m: UIMessage[]) => UIMessage[];

export interface ChatStream {
  state: ChatState;
  send: (text: string) => void;
  regenerate: () => void;
  edit: (messageId: string, content: string) => void;
  stop: () => void;
  /** Loads the conversation again (after a failed load). */
  reload: () => void;
}

/** The request body of a turn: the message plus this browser's model settings. */
function withSettings(body: SendMessageBody, settings: ChatSettings): SendMessageBody {
  const payload: SendMessageBody = {
    ...body,
    temperature: settings.temperature,
    maxTokens: settings.maxTokens,
  };
  if (settings.model) payload.model = settings.model;
  if (settings.system.trim()) payload.system = settings.system.trim();
  return payload;
}

export function dropLastAssistant(m: UIMessage[]): UIMessage[] {
  const last = m[m.length - 1];
  return last?.role === "assistant" ? m.slice(0, -1) : m;
}

/** Loads conversation `id` into the state; a 404 shows "not found". */
async function loadConversation(dispatch: Dispatch<ChatAction>, id: string, signal?: AbortSignal) {
  dispatch({ type: "loading" });
  try {
    const c = await api.conversation(id, signal);
    dispatch({ type: "loaded", title: c.title, messages: c.messages });
  } catch (err) {
    if (signal?.aborted) return;
    const missing = err instanceof ApiError && err.status === 404;
    dispatch({ type: "load-failed", missing, error: describeError(err).detail });
  }
}

/** Creates the conversation of a first turn and shows its address (no remount). */
async function createConversation(
  dispatch: Dispatch<ChatAction>,
  titleHint: string | undefined,
  refreshConversations: () => Promise<void>,
): Promise<string> {
  const created = await api.createConversation(titleHint?.slice(0, 80));
  dispatch({ type: "created", id: created.id, title: created.title });
  window.history.replaceState(null, "", `/chat/${created.id}`);
  void refreshConversations();
  return created.id;
}

const userMessage = (text: string): UIMessage => ({
  id: localId("u"),
  role: "user",
  content: text,
  createdAt: nowIso(),
});

/** Edit & resend: the gateway keeps the message (same id, new content) and drops what follows. */
const replaceContent =
  (messageId: string, content: string): Prepare =>
  (m) => {
    const i = m.findIndex((x) => x.id === messageId);
    const target = m[i];
    return target ? [...m.slice(0, i), { ...target, content }] : m;
  };

/** Resending a turn that never reached the server: its local user message goes first. */
const withoutLocalUser =
  (prepare: Prepare): Prepare =>
  (ms) =>
    prepare(ms.filter((m) => !m.id.startsWith("local-") || m.role !== "user"));

interface Turn {
  dispatch: Dispatch<ChatAction>;
  signal: AbortSignal;
  /** Retries the turn as a regeneration of its answer. */
  retryRegenerate: () => void;
  /** Retries the turn as it was sent (nothing reached the server). */
  retrySame: () => void;
  /** A new message's text: given back to the composer when its model is refused. */
  draft: string | null;
}

/** Reads the answer's events into the state; true once the server started the turn. */
async function readAnswer(turn: Turn, events: AsyncIterable<ChatEvent>): Promise<boolean> {
  let started = false;
  try {
    for await (const event of events) {
      if (event.type === "start") started = true;
      if (event.type !== "error") {
        turn.dispatch({ type: "event", event });
        continue;
      }
      // The event has no status of its own. An answer ended because access ended (an admin
      // denied its model, changed the role…) may have changed the models listed: ask again.
      const { code, message } = event.error;
      const refused = code === "MODEL_FORBIDDEN" || code === "ACCESS_REVOKED";
      const view = describeError(new ApiError(refused ? 403 : 500, code, message));
      const failure = { view, retry: turn.retryRegenerate };
      turn.dispatch({
        type: "failed",
        failure: refused ? { ...failure, kind: "model" as const } : failure,
        dropLive: false,
      });
    }
    if (turn.signal.aborted) turn.dispatch({ type: "stopped" });
  } catch (err) {
    if (turn.signal.aborted) turn.dispatch({ type: "stopped" });
    else if (!started && isModelError(err)) {
      // Another model may do: the message goes back to the composer to send again.
      const failure = { view: describeError(err), retry: turn.retrySame, kind: "model" as const };
      turn.dispatch({ type: "refused", failure, draft: turn.draft });
    } else {
      // Not started: nothing reached the server's history; drop the empty answer, offer to resend.
      const retry = started ? turn.retryRegenerate : turn.retrySame;
      turn.dispatch({
        type: "failed",
        failure: { view: describeError(err), retry },
        dropLive: !started,
      });
    }
  }
  return started;
}

interface TurnContext {
  dispatch: Dispatch<ChatAction>;
  /** The running turn's controller (Stop aborts it); cleared when the turn ends. */
  abortRef: RefObject<AbortController | null>;
  settings: ChatSettings;
  conversationId: string | null;
  refreshConversations: () => Promise<void>;
  /** A retry of this turn with another body and preparation. */
  again: (body: SendMessageBody, prepare: Prepare) => () => void;
}

/** One turn: show the message, create the conversation if needed, stream the answer in. */
async function runTurn(
  ctx: TurnContext,
  { body, prepare, titleHint }: { body: SendMessageBody; prepare: Prepare; titleHint?: string },
) {
  const { dispatch, abortRef } = ctx;
  const controller = new AbortController();
  abortRef.current = controller;
  const live = { id: localId("a"), role: "assistant", content: "", createdAt: nowIso() } as const;
  dispatch({ type: "begin", prepare, live: { ...live, streaming: true } });
  const turn: Turn = {
    dispatch,
    signal: controller.signal,
    retryRegenerate: ctx.again({ regenerate: true }, dropLastAssistant),
    retrySame: ctx.again(body, withoutLocalUser(prepare)),
    draft: body.content !== undefined && !body.editMessageId ? body.content : null,
  };
  try {
    const id =
      ctx.conversationId ??
      (await createConversation(dispatch, titleHint, ctx.refreshConversations));
    const payload = withSettings(body, ctx.settings);
    await readAnswer(turn, streamChat(id, payload, { signal: controller.signal }));
  } catch (err) {
    // Only creating the conversation throws here: nothing was sent.
    if (controller.signal.aborted) dispatch({ type: "stopped" });
    else {
      const failure = { view: describeError(err), retry: turn.retrySame };
      dispatch({ type: "failed", failure, dropLive: true });
    }
  } finally {
    dispatch({ type: "end" });
    if (abortRef.current === controller) abortRef.current = null;
    void ctx.refreshConversations();
  }
}

/**
 * One conversation: loading it, sending turns and streaming their answers (stop, retry,
 * regenerate, edit & resend). The first turn of a new chat creates the conversation and
 * replaces the address with `/chat/<id>` without remounting.
 */
export function useChatStream(
  initialId: string | undefined,
  settings: ChatSettings,
  refreshConversations: () => Promise<void>,
): ChatStream {
  const [state, dispatch] = useReducer(chatReducer, initialId, initialChatState);
  const abortRef = useRef<AbortController | null>(null);
  const conversationId = state.conversationId;
  const pathname = usePathname();

  useEffect(() => {
    if (!initialId) return;
    const controller = new AbortController();
    void loadConversation(dispatch, initialId, controller.signal);
    return () => controller.abort();
  }, [initialId]);
  // "New chat" after a first message was sent here (URL replaced with /chat/<id>): start over.
  useEffect(() => {
    if (!initialId && pathname === "/chat" && conversationId && !abortRef.current) {
      dispatch({ type: "reset" });
    }
  }, [pathname, initialId, conversationId]);
  // Abort a running stream when leaving the page.
  useEffect(() => () => abortRef.current?.abort(), []);

  const run = useCallback(
    (body: SendMessageBody, prepare: Prepare, titleHint?: string) =>
      runTurn(
        {
          dispatch,
          abortRef,
          settings,
          conversationId,
          refreshConversations,
          again: (b, p) => () => void latest.current.run(b, p, titleHint),
        },
        { body, prepare, titleHint },
      ),
    [conversationId, settings, refreshConversations],
  );
  // Stable actions (memoised children keep them): they call the latest `run`.
  const latest = useRef({ run, conversationId });
  latest.current = { run, conversationId };
  const [actions] = useState(() => ({
    send: (text: string) =>
      void latest.current.run({ content: text }, (m) => [...m, userMessage(text)], text),
    regenerate: () => void latest.current.run({ regenerate: true }, dropLastAssistant),
    edit: (messageId: string, content: string) =>
      void latest.current.run(
        { content, editMessageId: messageId },
        replaceContent(messageId, content),
      ),
    stop: () => abortRef.current?.abort(),
    reload: () => {
      const id = latest.current.conversationId;
      if (id) void loadConversation(dispatch, id);
    },
  }));
  return { state, ...actions };
}
