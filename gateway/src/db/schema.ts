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

/**
 * better-auth's user table, as far as the gateway reads and writes it directly. Its column
 * types depend on the engine (SQLite: 0/1 and numbers; PostgreSQL: boolean and timestamptz),
 * so read it through better-auth's adapter (toAuthUser) rather than raw.
 */
export interface UserTable {
  id: string;
  email: string;
  name: string;
  role: string | null;
  banned: boolean | number | null;
  twoFactorEnabled: boolean | number | null;
  pending: boolean | number | null;
  createdAt: Date | string | number;
  updatedAt: Date | string | number;
}

/** Admin overrides of a user's (`user:<id>`) or API key's (`key:<id>`) limits; null = default. */
export interface LimitOverrideTable {
  subject: string;
  userId: string;
  requestsPerMinute: number | null;
  tokensPerDay: number | null;
  concurrentStreams: number | null;
  maxTokens: number | null;
  updatedAt: number;
}

/** One LLM request, as the analytics see it. */
/** A usage row as written (the id is the database's). */
export type UsageRow = Omit<UsageRecordTable, "id">;

export interface UsageRecordTable {
  id: Generated<number>;
  /** Epoch milliseconds at the start of the request. */
  ts: number;
  userId: string;
  apiKeyId: string | null;
  route: string;
  model: string | null;
  promptTokens: number;
  completionTokens: number;
  /** Tokens charged to the daily quota (0 for a free cache hit). */
  quotaTokens: number;
  ttftMs: number | null;
  durationMs: number;
  status: number;
  /** ok | error | cut | cancelled | rejected */
  outcome: string;
  cacheHit: number;
  server: string | null;
  errorCode: string | null;
  /** 1 when upstream reported no usage and the tokens were counted by the gateway (0: exact). */
  estimated?: number | undefined;
}

/** An admin's invitation to create an account (services/invitations.ts). */
export interface InvitationTable {
  id: string;
  /** SHA-256 (hex) of the link's token; the token itself is never stored. */
  tokenHash: string;
  /** The invited address, lower-case: the account must have it. */
  email: string;
  role: string;
  invitedBy: string | null;
  /** Epoch milliseconds. */
  createdAt: number;
  expiresAt: number;
  usedAt: number | null;
  usedBy: string | null;
  revokedAt: number | null;
}

/** Settings an admin changes at runtime (e.g. `signup_mode`); the env gives the defaults. */
export interface GatewaySettingTable {
  name: string;
  value: string;
  updatedAt: number;
}

/** Fields shared by the model rules and limits: a public model and a role or one user. */
interface ModelSubjectColumns {
  id: string;
  /** The public model name as the admin wrote it (trimmed). */
  model: string;
  /** `model` lower-cased: what requests are matched against. */
  modelKey: string;
  /** `role:<role>` or `user:<id>`: unique with modelKey. */
  subject: string;
  role: string | null;
  userId: string | null;
  updatedAt: number;
}

/** May a role or user use a model (services/model-access.ts); no rule = allowed. */
export interface ModelAccessRuleTable extends ModelSubjectColumns {
  /** 1 = allow, 0 = deny. */
  allow: number;
}

/** Daily tokens of one model for each user of a role, or for one user (0 = no limit). */
export interface ModelLimitTable extends ModelSubjectColumns {
  tokensPerDay: number;
}

export interface AppTables {
  invitation: InvitationTable;
  gateway_setting: GatewaySettingTable;
  model_access_rule: ModelAccessRuleTable;
  model_limit: ModelLimitTable;
  limit_override: LimitOverrideTable;
  usage_record: UsageRecordTable;
  conversation: ConversationTable;
  message: MessageTable;
  user: UserTable;
  apikey: { id: string; referenceId: string };
  session: { id: string; userId: string };
}
