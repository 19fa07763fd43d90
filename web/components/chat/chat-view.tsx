"use client";

import Link from "next/link";
import { memo, type ReactNode, useLayoutEffect, useRef } from "react";
import { useSession } from "../shell/session";
import type { Failure } from "./chat-state";
import { Composer } from "./composer";
import { MessageItem, type UIMessage } from "./message-item";
import { ModelPicker } from "./model-picker";
import { ParamsPanel } from "./params-panel";
import { useChatModel, useFollowConversation } from "./use-chat-model";
import { useChatStream } from "./use-chat-stream";

export function ChatView({ conversationId: initialId }: { conversationId?: string }) {
  const { refreshConversations, user } = useSession();
  const model = useChatModel(initialId);
  const chat = useChatStream(initialId, model.settings, refreshConversations);
  const { state } = chat;
  useFollowConversation(model, initialId, state);

  if (state.load === "missing") {
    return (
      <div className="page">
        <h1>Conversation not found</h1>
        <p>
          It may have been deleted. <Link href="/chat">Start a new chat</Link>
        </p>
      </div>
    );
  }

  return (
    <div className="chat">
      <div className="chat-head">
        <h1 className="chat-title">{state.title || "New chat"}</h1>
        <ModelPicker
          models={model.models.data}
          error={model.models.error}
          onRetry={model.models.reload}
          value={model.settings.model}
          onChange={model.pick}
          notice={model.notice}
          disabled={state.load === "loading"}
          isAdmin={user.role === "admin"}
        />
        <ParamsPanel settings={model.settings} onChange={model.setSettings} />
      </div>
      <ChatLog streaming={state.streaming}>
        {state.load === "loading" ? <p className="muted">Loading conversation…</p> : null}
        {state.load === "error" ? (
          <div role="alert" className="alert alert-error">
            Could not load this conversation: {state.loadError}{" "}
            <button type="button" className="btn btn-small" onClick={chat.reload}>
              Retry
            </button>
          </div>
        ) : null}
        {state.load === "ready" && state.messages.length === 0 && !state.live ? (
          <p className="muted empty-chat">Ask anything. Answers stream in as they are written.</p>
        ) : null}
        <MessageList
          messages={state.messages}
          streaming={state.streaming}
          onRegenerate={chat.regenerate}
          onEdit={chat.edit}
        />
        {state.live ? <LiveAnswer message={state.live} /> : null}
        {state.failure ? <FailureAlert failure={state.failure} /> : null}
      </ChatLog>
      <p className="visually-hidden" role="status">
        {state.streaming ? "Answer streaming." : state.announce}
      </p>
      <Composer
        onSend={chat.send}
        onStop={chat.stop}
        streaming={state.streaming}
        disabled={state.load === "loading"}
        draft={state.draft}
      />
    </div>
  );
}

const noop = () => {};

/**
 * The scrolling message log: it follows the answer while it streams (a new turn scrolls to
 * it), unless the user has scrolled up.
 */
function ChatLog({ streaming, children }: { streaming: boolean; children: ReactNode }) {
  const logRef = useRef<HTMLDivElement>(null);
  const stickToBottom = useRef(true);
  useLayoutEffect(() => {
    if (streaming) stickToBottom.current = true;
  }, [streaming]);
  useLayoutEffect(() => {
    const el = logRef.current;
    if (el && stickToBottom.current) el.scrollTop = el.scrollHeight;
  });
  return (
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
      {children}
    </div>
  );
}

/** The answer being streamed: the only message a delta re-renders. */
function LiveAnswer({ message }: { message: UIMessage }) {
  return (
    <MessageItem
      message={message}
      canEdit={false}
      canRegenerate={false}
      onRegenerate={noop}
      onEdit={noop}
    />
  );
}

/** The settled messages: unchanged (and not re-rendered) while an answer streams. */
const MessageList = memo(function MessageList({
  messages,
  streaming,
  onRegenerate,
  onEdit,
}: {
  messages: UIMessage[];
  streaming: boolean;
  onRegenerate: () => void;
  onEdit: (id: string, content: string) => void;
}) {
  const lastAssistant = messages.findLast((m) => m.role === "assistant");
  return messages.map((m) => (
    <MessageItem
      key={m.id}
      message={m}
      canEdit={!streaming && m.role === "user" && !m.id.startsWith("local-")}
      canRegenerate={!streaming && m === lastAssistant && !m.id.startsWith("local-")}
      onRegenerate={onRegenerate}
      onEdit={(content) => onEdit(m.id, content)}
    />
  ));
});

function FailureAlert({ failure }: { failure: Failure }) {
  return (
    <div role="alert" className="alert alert-error chat-error">
      <strong>{failure.view.title}.</strong> {failure.view.detail}
      {failure.view.retryable ? (
        <button type="button" className="btn btn-small" onClick={failure.retry}>
          Retry
        </button>
      ) : null}
    </div>
  );
}
