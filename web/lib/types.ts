/** Shapes of the gateway's JSON API (see gateway/README.md). */

export type Role = "admin" | "user";

export interface User {
  id: string;
  email: string;
  name: string;
  role: Role;
  twoFactorEnabled: boolean;
  createdAt: string;
}

export interface ApiKey {
  id: string;
  name: string | null;
  start: string | null;
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
}

export interface CreatedApiKey {
  id: string;
  name: string | null;
  key: string;
  expiresAt: string | null;
}

export interface ConversationSummary {
  id: string;
  title: string;
  createdAt: string;
  updatedAt: string;
}

export type MessageRole = "user" | "assistant" | "system";

export interface Message {
  id: string;
  role: MessageRole;
  content: string;
  createdAt: string;
  finishReason?: string | null;
}

export interface Conversation extends ConversationSummary {
  messages: Message[];
}

export interface ModelInfo {
  id: string;
}

export interface AuthProvider {
  id: string;
  name: string;
}

export interface TopLogprob {
  token: string;
  logprob: number;
}

export interface AnalyzedToken {
  token: string;
  token_id: number;
  logprob: number | null;
  top_logprobs: TopLogprob[];
}

export interface AnalyzeResult {
  model: string;
  token_count: number;
  perplexity: number;
  tokens: AnalyzedToken[];
  classification?: { label: string; probability: number }[];
}

export interface AdminUser {
  id: string;
  email: string;
  name: string;
  role: Role;
  disabled: boolean;
  createdAt: string;
}

export interface SendMessageBody {
  content?: string;
  regenerate?: boolean;
  editMessageId?: string;
  model?: string;
  temperature?: number;
  maxTokens?: number;
  system?: string;
}
