"use client";

import Link from "next/link";
import { usePathname } from "next/navigation";
import { useCallback, useEffect, useLayoutEffect, useRef, useState } from "react";
import { ApiError, api } from "@/lib/api";
import { streamChat } from "@/lib/chat-stream";
import { describeError, type ErrorView } from "@/lib/errors";
import type { Message, ModelInfo, SendMessageBody } from "@/lib/types";
import { useSession } from "../shell/session";
import { Composer } from "./composer";
import { MessageItem, type UIMessage } from "./message-item";
import { ModelBadge } from "./model-badge";
import { ParamsPanel } from "./params-panel";
import { useChatSettings } from "./settings";

/**
 * Per-delta timings for the e2e latency check. `receivedAt`/`renderedAt` are
 * `performance.now()` readings (stream-reader arrival, DOM update); `sentAt` is the
 * gateway's epoch ms when it wrote the delta and `renderedEpoch` the `Date.now()` once
 * the text is in the DOM, so `renderedEpoch - sentAt` is gateway-send → token-on-page.
 */
export interface DeltaTiming {
  receivedAt: number;
  renderedAt: number;
  sentAt?: number;
  renderedEpoch: number;
}

declare global {
  interface Window {
    __chatTimings?: DeltaTiming[];
  }
}

let localSeq = 0;
const localId = (prefix: string) => `local-${prefix}-${++localSeq}`;
const nowIso = () => new Date().toISOString();

interface Failure {
  view: ErrorView;
  retry: () => void;
}

export function ChatView({ conversationId: initialId }: { conversationId?: string }) {
  const { refreshConversations } = useSession();
  const pathname = usePathname();
  const [settings, setSettings] = useChatSettings();
  const [conversationId, setConversationId] = useState<string | null>(initialId ?? null);
  const [title, setTitle] = useState<string>("");
  const [messages, setMessages] = useState<UIMessage[]>([]);
  const [loadState, setLoadState] = useState<"loading" | "ready" | "missing" | "error">(
    initialId ? "loading" : "ready",
  );
  const [loadError, setLoadError] = useState<string | null>(null);
  const [streaming, setStreaming] = useState(false);
  const [failure, setFailure] = useState<Failure | null>(null);
  const [announce, setAnnounce] = useState("");
  const abortRef = useRef<AbortController | null>(null);
  const pendingTimings = useRef<{ receivedAt: number; sentAt?: number }[]>([]);
  const logRef = useRef<HTMLDivElement>(null);
  const stickToBottom = useRef(true);
  const [models, setModels] = useState<ModelInfo[]>([]);

  useEffect(() => {
    api.models().then(setModels, () => setModels([]));
  }, []);

  const load = useCallback(async (id: string, signal?: AbortSignal) => {
    setLoadState("loading");
    try {
      const c = await api.conversation(id, signal);
      setTitle(c.title);
      setMessages(c.messages.filter((m) => m.role !== "system"));
      setLoadState("ready");
    } catch (err) {
      if (signal?.aborted) return;
      if (err instanceof ApiError && err.status === 404) setLoadState("missing");
      else {
        setLoadError(describeError(err).detail);
        setLoadState("error");
      }
    }
  }, []);

  useEffect(() => {
    if (!initialId) return;
    const controller = new AbortController();
    void load(initialId, controller.signal);
    return () => controller.abort();
  }, [initialId, load]);

  // "New chat" after a first message was sent here (URL replaced with /chat/<id>): start over.
  useEffect(() => {
    if (!initialId && pathname === "/chat" && conversationId && !abortRef.current) {
      setConversationId(null);
      setMessages([]);
      setTitle("");
      setFailure(null);
    }
  }, [pathname, initialId, conversationId]);

  // Abort a running stream when leaving the page.
  useEffect(() => () => abortRef.current?.abort(), []);

  // Record when each streamed delta reached the DOM (exposed for the e2e latency check).
  useLayoutEffect(() => {
    if (pendingTimings.current.length === 0) return;
    const renderedAt = performance.now();
    const renderedEpoch = Date.now();
    window.__chatTimings ??= [];
    for (const t of pendingTimings.current) {
      window.__chatTimings.push({ ...t, renderedAt, renderedEpoch });
    }
    pendingTimings.current = [];
  });

  // Follow the answer while it streams, unless the user scrolled up.
  useLayoutEffect(() => {
    const el = logRef.current;
    if (el && stickToBottom.current) el.scrollTop = el.scrollHeight;
  });

  const run = useCallback(
    async (body: SendMessageBody, prepare: (m: UIMessage[]) => UIMessage[], titleHint?: string) => {
      setFailure(null);
      const controller = new AbortController();
      abortRef.current = controller;
      setStreaming(true);
      stickToBottom.current = true;
      let assistantId = localId("a");
      let started = false;
      setMessages((m) => [
        ...prepare(m),
        { id: assistantId, role: "assistant", content: "", createdAt: nowIso(), streaming: true },
      ]);
      const patchAssistant = (f: (m: UIMessage) => UIMessage) =>
        setMessages((ms) => ms.map((m) => (m.id === assistantId ? f(m) : m)));

      const payload: SendMessageBody = {
        ...body,
        temperature: settings.temperature,
        maxTokens: settings.maxTokens,
      };
      if (settings.model) payload.model = settings.model;
      if (settings.system.trim()) payload.system = settings.system.trim();

      let id = conversationId;
      const retryWith =
        (again: SendMessageBody, againPrepare: (m: UIMessage[]) => UIMessage[]) => () =>
          void runRef.current?.(again, againPrepare, titleHint);
      try {
        if (!id) {
          const created = await api.createConversation(titleHint?.slice(0, 80));
          id = created.id;
          setConversationId(id);
          setTitle(created.title);
          window.history.replaceState(null, "", `/chat/${id}`);
          void refreshConversations();
        }
        for await (const ev of streamChat(id, payload, { signal: controller.signal })) {
          if (ev.type === "start") {
            started = true;
            const oldId = assistantId;
            if (ev.assistantMessageId) assistantId = ev.assistantMessageId;
            const user = ev.userMessage;
            setMessages((ms) =>
              ms.map((m) => {
                if (m.id === oldId) return { ...m, id: assistantId };
                if (user && m.role === "user" && m.id.startsWith("local-")) return user;
                return m;
              }),
            );
          } else if (ev.type === "delta") {
            pendingTimings.current.push(
              ev.sentAt === undefined
                ? { receivedAt: ev.receivedAt }
                : { receivedAt: ev.receivedAt, sentAt: ev.sentAt },
            );
            patchAssistant((m) => ({ ...m, content: m.content + ev.text }));
          } else if (ev.type === "done") {
            const final: Message | undefined = ev.message;
            patchAssistant((m) => ({
              ...m,
              ...(final ?? {}),
              content: final?.content ?? m.content,
              finishReason: ev.finishReason ?? final?.finishReason ?? m.finishReason,
              streaming: false,
            }));
            setAnnounce("Answer complete.");
          } else if (ev.type === "error") {
            patchAssistant((m) => ({ ...m, streaming: false, finishReason: "error" }));
            setFailure({
              view: describeError(new ApiError(500, ev.error.code, ev.error.message)),
              retry: retryWith({ regenerate: true }, dropLastAssistant),
            });
          }
        }
        if (controller.signal.aborted) {
          patchAssistant((m) => ({ ...m, streaming: false, finishReason: "cancelled" }));
          setAnnounce("Stopped.");
        }
      } catch (err) {
        if (controller.signal.aborted) {
          patchAssistant((m) => ({ ...m, streaming: false, finishReason: "cancelled" }));
          setAnnounce("Stopped.");
        } else if (started) {
          patchAssistant((m) => ({ ...m, streaming: false, finishReason: "error" }));
          setFailure({
            view: describeError(err),
            retry: retryWith({ regenerate: true }, dropLastAssistant),
          });
        } else {
          // Nothing reached the server's history: drop the empty answer and offer to resend.
          setMessages((ms) => ms.filter((m) => m.id !== assistantId));
          setFailure({
            view: describeError(err),
            retry: retryWith(body, (ms) =>
              prepare(ms.filter((m) => !m.id.startsWith("local-") || m.role !== "user")),
            ),
          });
        }
      } finally {
        patchAssistant((m) => (m.streaming ? { ...m, streaming: false } : m));
        if (abortRef.current === controller) abortRef.current = null;
        setStreaming(false);
        void refreshConversations();
      }
    },
    [conversationId, settings, refreshConversations],
  );
  const runRef = useRef(run);
  runRef.current = run;

  const send = (text: string) =>
    run(
      { content: text },
      (m) => [...m, { id: localId("u"), role: "user", content: text, createdAt: nowIso() }],
      text,
    );

  const regenerate = () => run({ regenerate: true }, dropLastAssistant);

  const edit = (messageId: string, content: string) =>
    run({ content, editMessageId: messageId }, (m) => {
      // The gateway keeps the message (same id, new content) and drops everything after it.
      const i = m.findIndex((x) => x.id === messageId);
      const target = m[i];
      return target ? [...m.slice(0, i), { ...target, content }] : m;
    });

  const stop = () => abortRef.current?.abort();

  if (loadState === "missing") {
    return (
      <div className="page">
        <h1>Conversation not found</h1>
        <p>
          It may have been deleted. <Link href="/chat">Start a new chat</Link>
        </p>
      </div>
    );
  }

  const lastAssistant = [...messages].reverse().find((m) => m.role === "assistant");

  return (
    <div className="chat">
      <div className="chat-head">
        <h1 className="chat-title">{title || "New chat"}</h1>
        <ModelBadge models={models} selected={settings.model} />
        <ParamsPanel settings={settings} onChange={setSettings} models={models} />
      </div>
      <div
        className="chat-log"
        ref={logRef}
        role="log"
        aria-label="Messages"
        aria-live="off"
        tabIndex={-1}
        onScroll={(e) => {
          const el = e.currentTarget;
          stickToBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
        }}
      >
        {loadState === "loading" ? <p className="muted">Loading conversation…</p> : null}
        {loadState === "error" ? (
          <div role="alert" className="alert alert-error">
            Could not load this conversation: {loadError}{" "}
            <button
              type="button"
              className="btn btn-small"
              onClick={() => conversationId && void load(conversationId)}
            >
              Retry
            </button>
          </div>
        ) : null}
        {loadState === "ready" && messages.length === 0 ? (
          <p className="muted empty-chat">Ask anything. Answers stream in as they are written.</p>
        ) : null}
        {messages.map((m) => (
          <MessageItem
            key={m.id}
            message={m}
            canEdit={!streaming && m.role === "user" && !m.id.startsWith("local-")}
            canRegenerate={!streaming && m === lastAssistant && !m.id.startsWith("local-")}
            onRegenerate={regenerate}
            onEdit={(content) => edit(m.id, content)}
          />
        ))}
        {failure ? (
          <div role="alert" className="alert alert-error chat-error">
            <strong>{failure.view.title}.</strong> {failure.view.detail}
            {failure.view.retryable ? (
              <button type="button" className="btn btn-small" onClick={failure.retry}>
                Retry
              </button>
            ) : null}
          </div>
        ) : null}
      </div>
      <p className="visually-hidden" role="status">
        {streaming ? "Answer streaming." : announce}
      </p>
      <Composer
        onSend={send}
        onStop={stop}
        streaming={streaming}
        disabled={loadState === "loading"}
      />
    </div>
  );
}

function dropLastAssistant(m: UIMessage[]): UIMessage[] {
  const last = m[m.length - 1];
  return last?.role === "assistant" ? m.slice(0, -1) : m;
}
