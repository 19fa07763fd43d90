/** What component tests share: a signed-in session, a controllable SSE answer, JSON bodies. */
import type { ReactNode } from "react";
import type { Message, PrefixCache, Role } from "@/lib/types";
import type { Session } from "./shell/session";
import { SessionContextProvider } from "./shell/session";

const session: Session = {
  user: {
    id: "u",
    email: "a@b.c",
    name: "A",
    role: "user",
    twoFactorEnabled: false,
    pending: false,
    createdAt: "",
  },
  conversations: [],
  refreshConversations: async () => {},
  conversationsError: null,
  search: "",
  setSearch: () => {},
};

/** `ui` inside a signed-in user's session (role user unless told). */
export const wrap = (ui: ReactNode, role: Role = "user") => (
  <SessionContextProvider value={{ ...session, user: { ...session.user, role } }}>
    {ui}
  </SessionContextProvider>
);

/** A controllable SSE response: push events, then close. */
export function controllableStream() {
  const enc = new TextEncoder();
  let ctrl!: ReadableStreamDefaultController<Uint8Array>;
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      ctrl = c;
    },
  });
  return {
    response: new Response(body, { headers: { "content-type": "text/event-stream" } }),
    send(event: string, data: unknown) {
      ctrl.enqueue(enc.encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`));
    },
    close() {
      ctrl.close();
    },
  };
}

/** GET /api/conversations/:id's answer. */
export const conversationJson = (id: string, title: string, messages: Message[] = []) =>
  Response.json({ id, title, createdAt: "", updatedAt: "", messages });

/** An llm-server's prefix-cache report after some use: 12.4 of 1,024 MiB, 3 hits in 4. */
export const PREFIX_CACHE: PrefixCache = {
  bytes: 13_000_000,
  capacity_bytes: 1 << 30,
  entries: 2,
  hits: 3,
  misses: 1,
  restored_tokens: 5_900,
  reused_prompt_tokens: 6_000,
  computed_prompt_tokens: 2_000,
};
