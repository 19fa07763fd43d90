"use client";

import { type KeyboardEvent, memo, useEffect, useRef, useState } from "react";
import type { Draft } from "./chat-state";

/**
 * Message box: Enter sends, Shift+Enter inserts a new line; Stop while an answer streams.
 * A `draft` (a refused message given back) replaces the text once, when it arrives.
 */
export const Composer = memo(function Composer({
  onSend,
  onStop,
  streaming,
  disabled = false,
  draft = null,
}: {
  onSend: (text: string) => void;
  onStop: () => void;
  streaming: boolean;
  disabled?: boolean;
  draft?: Draft | null;
}) {
  const [text, setText] = useState("");
  const ref = useRef<HTMLTextAreaElement>(null);
  useEffect(() => {
    if (!draft) return;
    setText(draft.text);
    ref.current?.focus();
  }, [draft]);

  const send = () => {
    const value = text.trim();
    if (!value || streaming || disabled) return;
    onSend(value);
    setText("");
  };

  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      send();
    }
  };

  return (
    <form
      className="composer"
      onSubmit={(e) => {
        e.preventDefault();
        send();
      }}
    >
      <label htmlFor="composer-input" className="visually-hidden">
        Message
      </label>
      <textarea
        id="composer-input"
        ref={ref}
        rows={2}
        value={text}
        placeholder="Send a message (Enter sends, Shift+Enter for a new line)"
        onChange={(e) => setText(e.target.value)}
        onKeyDown={onKeyDown}
        aria-describedby="composer-hint"
      />
      <span id="composer-hint" className="visually-hidden">
        Enter sends, Shift+Enter inserts a new line.
      </span>
      {streaming ? (
        <button type="button" className="btn btn-danger" onClick={onStop}>
          Stop
        </button>
      ) : (
        <button type="submit" className="btn btn-primary" disabled={disabled || !text.trim()}>
          Send
        </button>
      )}
    </form>
  );
});
