"use client";

import Link from "next/link";
import { usePathname, useRouter } from "next/navigation";
import { useState } from "react";
import { api } from "@/lib/api";
import type { ConversationSummary } from "@/lib/types";
import { useSession } from "./session";

function Item({ c, active }: { c: ConversationSummary; active: boolean }) {
  const { refreshConversations } = useSession();
  const router = useRouter();
  const [editing, setEditing] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const title = c.title || "Untitled";

  if (editing) {
    return (
      <li className="conv-item">
        <form
          className="conv-rename"
          onSubmit={async (e) => {
            e.preventDefault();
            const value = String(new FormData(e.currentTarget).get("title")).trim();
            if (value && value !== c.title) {
              try {
                await api.renameConversation(c.id, value);
                await refreshConversations();
              } catch (err) {
                setError(err instanceof Error ? err.message : String(err));
              }
            }
            setEditing(false);
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
              if (e.key === "Escape") setEditing(false);
            }}
          />
          <button type="submit" className="btn btn-small">
            Save
          </button>
        </form>
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
          <button
            type="button"
            className="btn btn-small btn-danger"
            onClick={async () => {
              if (!window.confirm(`Delete “${title}”? This cannot be undone.`)) return;
              try {
                await api.deleteConversation(c.id);
                await refreshConversations();
                if (active) router.push("/chat");
              } catch (err) {
                setError(err instanceof Error ? err.message : String(err));
              }
            }}
          >
            Delete
          </button>
        </div>
      </details>
      {error ? (
        <p role="alert" className="alert alert-error small">
          {error}
        </p>
      ) : null}
    </li>
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
