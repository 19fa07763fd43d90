import type { Generated } from "kysely";

/** Tables owned by the gateway (better-auth owns user, session, account, apikey, …). */
export interface ConversationTable {
  id: string;
  userId: string;
  title: string | null;
  /** Epoch milliseconds. */
  createdAt: number;
  updatedAt: number;
}

export interface MessageTable {
  seq: Generated<number>;
  id: string;
  conversationId: string;
  role: "user" | "assistant" | "system";
  content: string;
  finishReason: string | null;
  model: string | null;
  promptTokens: number | null;
  completionTokens: number | null;
  createdAt: number;
}

/** better-auth's user table, as far as the gateway reads and writes it directly. */
export interface UserTable {
  id: string;
  email: string;
  name: string;
  role: string | null;
  banned: number | null;
  twoFactorEnabled: number | null;
  createdAt: string | number;
  updatedAt: string | number;
}

export interface AppTables {
  conversation: ConversationTable;
  message: MessageTable;
  user: UserTable;
  apikey: { id: string; referenceId: string };
}
