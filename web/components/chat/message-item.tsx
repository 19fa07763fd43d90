"use client";

import { useState } from "react";
import type { Message } from "@/lib/types";
import { CopyButton } from "../copy-button";
import { Markdown } from "../markdown";

export interface UIMessage extends Message {
  streaming?: boolean;
}

const FINISH_NOTES: Record<string, string> = {
  cancelled: "Stopped",
  length: "Cut at the max tokens limit",
  error: "Failed",
};

export function MessageItem({
  message,
  canRegenerate,
  canEdit,
  onRegenerate,
  onEdit,
}: {
  message: UIMessage;
  canRegenerate: boolean;
  canEdit: boolean;
  onRegenerate: () => void;
  onEdit: (content: string) => void;
}) {
  const [editing, setEditing] = useState(false);
  const isUser = message.role === "user";
  const note = message.finishReason ? FINISH_NOTES[message.finishReason] : undefined;

  return (
    <article
      className={`msg msg-${message.role}`}
      aria-label={isUser ? "Your message" : "Answer"}
      data-testid={`msg-${message.role}`}
      aria-busy={message.streaming || undefined}
    >
      {editing ? (
        <EditForm
          message={message}
          onCancel={() => setEditing(false)}
          onSend={(content) => {
            setEditing(false);
            onEdit(content);
          }}
        />
      ) : (
        <>
          <div className="msg-body">
            {isUser ? (
              <p className="msg-text">{message.content}</p>
            ) : message.content ? (
              <Markdown text={message.content} />
            ) : message.streaming ? (
              <p className="muted typing">Thinking…</p>
            ) : (
              <p className="muted">(empty answer)</p>
            )}
          </div>
          {message.streaming ? null : (
            <div className="msg-actions">
              {!isUser && message.model ? (
                // The model that answered: after a fallback, not the one picked.
                <span className="msg-model" data-testid="answer-model">
                  <span className="visually-hidden">Answered by </span>
                  {message.model}
                </span>
              ) : null}
              {note ? <span className="msg-note">{note}</span> : null}
              <CopyButton
                text={message.content}
                label={isUser ? "Copy message" : "Copy answer"}
                className="btn btn-small btn-ghost"
              />
              {isUser && canEdit ? (
                <button
                  type="button"
                  className="btn btn-small btn-ghost"
                  onClick={() => setEditing(true)}
                >
                  Edit
                </button>
              ) : null}
              {!isUser && canRegenerate ? (
                <button type="button" className="btn btn-small btn-ghost" onClick={onRegenerate}>
                  Regenerate
                </button>
              ) : null}
            </div>
          )}
        </>
      )}
    </article>
  );
}

/** Edit & resend of a user message: Escape or Cancel closes it, an empty text is not sent. */
function EditForm({
  message,
  onSend,
  onCancel,
}: {
  message: UIMessage;
  onSend: (content: string) => void;
  onCancel: () => void;
}) {
  return (
    <form
      className="msg-edit"
      onSubmit={(e) => {
        e.preventDefault();
        const value = String(new FormData(e.currentTarget).get("content")).trim();
        if (value) onSend(value);
      }}
    >
      <label htmlFor={`edit-${message.id}`} className="visually-hidden">
        Edit your message
      </label>
      <textarea
        id={`edit-${message.id}`}
        name="content"
        defaultValue={message.content}
        rows={3}
        // biome-ignore lint/a11y/noAutofocus: opened by the user's Edit action
        autoFocus
        onKeyDown={(e) => {
          if (e.key === "Escape") onCancel();
        }}
      />
      <div className="msg-actions">
        <button type="submit" className="btn btn-small btn-primary">
          Send edit
        </button>
        <button type="button" className="btn btn-small" onClick={() => onCancel()}>
          Cancel
        </button>
      </div>
    </form>
  );
}
