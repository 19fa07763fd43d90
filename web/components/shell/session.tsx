"use client";

import { createContext, type ReactNode, useCallback, useContext, useEffect, useState } from "react";
import { api } from "@/lib/api";
import type { ConversationSummary, User } from "@/lib/types";
import { PendingAccount } from "./pending-account";

export interface Session {
  user: User;
  conversations: ConversationSummary[];
  /** Reloads the sidebar's list (after a send, rename, delete). */
  refreshConversations: () => Promise<void>;
  conversationsError: string | null;
  search: string;
  setSearch: (q: string) => void;
}

const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error("useSession outside SessionProvider");
  return s;
}

/** For tests and stories: provide a fixed session. */
export const SessionContextProvider = SessionContext.Provider;

/** Loads the signed-in user (a 401 redirects to sign-in) and the conversation list. */
export function SessionProvider({
  children,
  fallback,
}: {
  children: ReactNode;
  fallback: ReactNode;
}) {
  const [user, setUser] = useState<User | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [conversations, setConversations] = useState<ConversationSummary[]>([]);
  const [conversationsError, setConversationsError] = useState<string | null>(null);
  const [search, setSearch] = useState("");

  useEffect(() => {
    api.me().then(setUser, (e: unknown) => {
      setError(e instanceof Error ? e.message : String(e));
    });
  }, []);

  const refreshConversations = useCallback(async () => {
    try {
      setConversations(await api.conversations(search.trim() || undefined));
      setConversationsError(null);
    } catch (e) {
      setConversationsError(e instanceof Error ? e.message : String(e));
    }
  }, [search]);

  useEffect(() => {
    if (!user || user.pending) return;
    const t = setTimeout(() => void refreshConversations(), search ? 200 : 0);
    return () => clearTimeout(t);
  }, [user, search, refreshConversations]);

  if (!user) {
    return error ? (
      <main id="main" className="container">
        <p role="alert" className="alert alert-error">
          Could not load your account: {error}{" "}
          <button type="button" className="btn btn-small" onClick={() => window.location.reload()}>
            Retry
          </button>
        </p>
      </main>
    ) : (
      fallback
    );
  }
  // A pending account can use nothing (the gateway answers 403): say so instead of the app.
  if (user.pending) return <PendingAccount user={user} />;
  return (
    <SessionContext.Provider
      value={{ user, conversations, refreshConversations, conversationsError, search, setSearch }}
    >
      {children}
    </SessionContext.Provider>
  );
}
