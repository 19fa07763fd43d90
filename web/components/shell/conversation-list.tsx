"use client";

import Link from "next/link";
import { usePathname, useRouter } from "next/navigation";
import { useState } from "react";
import { api } from "@/lib/api";
import type { ConversationSummary } from "@/lib/types";
import { useActions } from "../use-form-action";
import { useSession } from "./session";

function Item({ c, active }: { c: ConversationSummary; active: boolean }) {
  const { refreshConversations } = useSession();
  const router = useRouter();
  const [editing, setEditing] = useState(false);
  const actions = useActions();
  const title = c.title || "Untitled";

  const rename = (value: string) =>
    actions.run(async () => {
      try {
        if (value && value !== c.title) {
          await api.renameConversation(c.id, value);
          await refreshConversations();
        }
        return {};
      } finally {
        setEditing(false);
      }
    });
  const remove = () => {
    if (!window.confirm(`Delete “${title}”? This cannot be undone.`)) return;
    actions.run(async () => {
      await api.deleteConversation(c.id);
      await refreshConversations();
      if (active) router.push("/chat");
      return {};
    });
  };

  if (editing) {
    return (
      <li className="conv-item">
        <RenameForm c={c} title={title} onRename={rename} onCancel={() => setEditing(false)} />
      </li>
    );
  }

  return (
    <li className={active ? "conv-item active" : "conv-item"}>
      <Link href={`/chat/${c.id}`} aria-current={active ? "page" : undefined} className="conv-link">
        {title}
      </Link>
      <details className="conv-menu">
        <summary aria-label={`Actions for ${title}`}>⋯</summary>
        <div className="conv-menu-body">
          <button
            type="button"
            className="btn btn-small btn-ghost"
            onClick={() => setEditing(true)}
          >
            Rename
          </button>
          <a className="btn btn-small btn-ghost" href={api.exportUrl(c.id, "markdown")} download>
            Export Markdown
          </a>
          <a className="btn btn-small btn-ghost" href={api.exportUrl(c.id, "json")} download>
            Export JSON
          </a>
          <button type="button" className="btn btn-small btn-danger" onClick={remove}>
            Delete
          </button>
        </div>
      </details>
      {actions.outcome.error ? (
        <p role="alert" className="alert alert-error small">
          {actions.outcome.error}
        </p>
      ) : null}
    </li>
  );
}

/** Renames a conversation: Enter saves (an unchanged or empty title changes nothing), Escape closes. */
function RenameForm({
  c,
  title,
  onRename,
  onCancel,
}: {
  c: ConversationSummary;
  title: string;
  onRename: (value: string) => void;
  onCancel: () => void;
}) {
  return (
    <form
      className="conv-rename"
      onSubmit={(e) => {
        e.preventDefault();
        onRename(String(new FormData(e.currentTarget).get("title")).trim());
      }}
    >
      <label className="visually-hidden" htmlFor={`rename-${c.id}`}>
        New title for {title}
      </label>
      <input
        id={`rename-${c.id}`}
        name="title"
        defaultValue={c.title}
        // biome-ignore lint/a11y/noAutofocus: opened by the user's Rename action
        autoFocus
        onKeyDown={(e) => {
          if (e.key === "Escape") onCancel();
        }}
      />
      <button type="submit" className="btn btn-small">
        Save
      </button>
    </form>
  );
}

export function ConversationList() {
  const { conversations, search, setSearch, conversationsError } = useSession();
  const pathname = usePathname();
  return (
    <nav aria-label="Conversations" className="conversations">
      <div className="field">
        <label htmlFor="conv-search" className="visually-hidden">
          Search conversations
        </label>
        <input
          id="conv-search"
          type="search"
          placeholder="Search conversations"
          value={search}
          onChange={(e) => setSearch(e.target.value)}
        />
      </div>
      {conversationsError ? (
        <p role="alert" className="alert alert-error small">
          {conversationsError}
        </p>
      ) : null}
      {conversations.length === 0 ? (
        <p className="muted small">{search ? "No match." : "No conversations yet."}</p>
      ) : (
        <ul className="conv-list" data-testid="conversation-list">
          {conversations.map((c) => (
            <Item key={c.id} c={c} active={pathname === `/chat/${c.id}`} />
          ))}
        </ul>
      )}
    </nav>
  );
}
