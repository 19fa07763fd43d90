/** Shapes of the gateway's JSON API (see gateway/README.md). */

export type Role = "admin" | "user";

export interface User {
  id: string;
  email: string;
  name: string;
  role: Role;
  twoFactorEnabled: boolean;
  /** Signed up while sign-up needed approval, not approved yet: nothing works until then. */
  pending?: boolean;
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
  /** "base": no chat template, the model continues text (llm-server's `/v1/models`). */
  kind?: "base" | "chat";
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
  pending?: boolean;
  createdAt: string;
}

/** Who may create an account (gateway SIGNUP_MODE, changed by admins at runtime). */
export type SignupMode = "open" | "approval" | "invite" | "closed";

/** GET /api/admin/settings */
export interface AdminSettings {
  signupMode: SignupMode;
  signupModeDefault: SignupMode;
  mail: {
    configured: boolean;
    sent: number;
    failed: number;
    lastFailure: { at: string; kind: string; error: string } | null;
  };
}

export interface Invitation {
  id: string;
  email: string;
  role: Role;
  status: "pending" | "used" | "expired" | "revoked";
  createdAt: string;
  expiresAt: string;
  usedAt: string | null;
  revokedAt: string | null;
}

/** POST /api/admin/invitations: `link` only when it was not mailed. */
export interface InvitationSent {
  invitation: Invitation;
  link?: string;
  mail: { sent: boolean; reason?: string; error?: string };
}

/** An API key's own limits (admin): null = none of the key's own, 0 = no limit. */
export interface KeyLimits {
  requestsPerMinute: number | null;
  tokensPerDay: number | null;
  concurrentStreams: number | null;
  maxTokens: number | null;
}

/** A user's API key as an admin sees it, with the key's own limits. */
export interface AdminApiKey extends ApiKey {
  limits: KeyLimits;
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

/** Aggregate statistics of LLM requests (gateway usage routes). Latencies are null with no answers. */
export interface UsageStats {
  requests: number;
  errors: number;
  errorRate: number;
  rejected: number;
  cacheHits: number;
  cacheHitRate: number;
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  latencyP50Ms: number | null;
  latencyP95Ms: number | null;
  latencyP99Ms: number | null;
  ttftP50Ms: number | null;
  ttftP95Ms: number | null;
  ttftP99Ms: number | null;
}

/** One quota meter; a null limit means no limit. */
export interface QuotaMeter {
  used: number;
  limit: number | null;
  remaining: number | null;
  resetAt: string | null;
}

/** GET /api/user/usage?days=N */
export interface UserUsage {
  quota: {
    requestsPerMinute: QuotaMeter;
    tokensPerDay: QuotaMeter;
    concurrentStreams: QuotaMeter;
    maxTokensPerRequest: number | null;
  };
  /** Effective limits; 0 = no limit. */
  limits: {
    requestsPerMinute: number;
    tokensPerDay: number;
    concurrentStreams: number;
    maxTokens: number;
  };
  totals: UsageStats;
  days: {
    day: string;
    requests: number;
    promptTokens: number;
    completionTokens: number;
    cacheHits: number;
    errors: number;
  }[];
}

export type UsageGroupBy = "user" | "day" | "model";

export interface AdminUsageRow extends UsageStats {
  day?: string;
  userId?: string;
  email?: string | null;
  model?: string;
}

/** GET /api/admin/usage?from=&to=&groupBy= */
export interface AdminUsage {
  from: string;
  to: string;
  groupBy: UsageGroupBy;
  totals: UsageStats;
  rows: AdminUsageRow[];
}

export type ServerState = "unknown" | "healthy" | "unhealthy" | "ejected";

export interface LlmServer {
  url: string;
  state: ServerState;
  outstanding: number;
  capacity: number;
  running: number | null;
  queued: number | null;
  maxRunning: number | null;
  consecutiveFailures: number;
  requests: number;
  failures: number;
  lastCheckAt: string | null;
  lastError: string | null;
}

/** GET /api/admin/servers */
export interface ServersStatus {
  servers: LlmServer[];
  queue: { waiting: number; max: number; timeoutMs: number };
}
