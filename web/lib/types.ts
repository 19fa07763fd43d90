/**
 * Shapes of the gateway's JSON API, named for the app. All of them come from
 * `api-types.gen.ts`, which is generated from the gateway's OpenAPI document
 * (`npm run api-types`; `npm run lint` fails when it is not current).
 */
import type { paths } from "./api-types.gen";

type Method = "get" | "post" | "put" | "patch" | "delete";
type JsonOf<R> = R extends { content: { "application/json": infer T } } ? T : never;
/** The JSON body of a route's success answer (200 or 201). */
type Ok<P extends keyof paths, M extends Method> = paths[P][M] extends { responses: infer R }
  ? JsonOf<R[200 & keyof R]> | JsonOf<R[201 & keyof R]>
  : never;
/** The JSON body a route takes. */
type Body<P extends keyof paths, M extends Method> = paths[P][M] extends {
  requestBody?: infer B;
}
  ? JsonOf<NonNullable<B>>
  : never;

export type User = Ok<"/api/user", "get">;
export type Role = User["role"];
export type ApiKey = Ok<"/api/user/api-keys", "get">["keys"][number];
export type CreatedApiKey = Ok<"/api/user/api-keys", "post">;
export type AuthProvider = Ok<"/api/auth-providers", "get">["providers"][number];
/** A model this user may use (GET /api/models lists only those), with its kind and state. */
export type ModelInfo = Ok<"/api/models", "get">["models"][number];
/** Whether a model can answer now: loading and unloaded ones answer after they load. */
export type ModelState = NonNullable<ModelInfo["state"]>;

export type ConversationSummary = Ok<"/api/conversations", "get">["conversations"][number];
export type Conversation = Ok<"/api/conversations/{id}", "get">;
export type Message = Conversation["messages"][number];
export type MessageRole = Message["role"];
export type SendMessageBody = Body<"/api/conversations/{id}/messages", "post">;

export type AnalyzeResult = Ok<"/api/analyze", "post">;
export type AnalyzedToken = AnalyzeResult["tokens"][number];
export type TopLogprob = AnalyzedToken["top_logprobs"][number];

export type AdminUser = Ok<"/api/admin/users", "get">["users"][number];
/** GET /api/admin/settings */
export type AdminSettings = Ok<"/api/admin/settings", "get">;
/** Who may create an account (gateway SIGNUP_MODE, changed by admins at runtime). */
export type SignupMode = AdminSettings["signupMode"];
export type Invitation = Ok<"/api/admin/invitations", "get">["invitations"][number];
/** POST /api/admin/invitations: `link` only when it was not mailed. */
export type InvitationSent = Ok<"/api/admin/invitations", "post">;
/** An API key's own limits (admin): null = none of the key's own, 0 = no limit. */
export type KeyLimits = Body<"/api/admin/api-keys/{id}/limits", "put">;
/** A user's API key as an admin sees it, with the key's own limits. */
export type AdminApiKey = Ok<"/api/admin/users/{id}/api-keys", "get">["keys"][number];

/** GET /api/user/usage?days=N */
export type UserUsage = Ok<"/api/user/usage", "get">;
/** One quota meter; a null limit means no limit. */
export type QuotaMeter = UserUsage["quota"]["tokensPerDay"];
/** Aggregate statistics of LLM requests. Latencies are null with no answers. */
export type UsageStats = UserUsage["totals"];
/** GET /api/admin/usage?from=&to=&groupBy= */
export type AdminUsage = Ok<"/api/admin/usage", "get">;
export type AdminUsageRow = AdminUsage["rows"][number];
export type UsageGroupBy = AdminUsage["groupBy"];

/** GET /api/admin/servers */
export type ServersStatus = Ok<"/api/admin/servers", "get">;
export type LlmServer = ServersStatus["servers"][number];
export type ServerState = LlmServer["state"];

/** GET /api/admin/models: every model the gateway routes, its upstreams and today's usage. */
export type AdminModels = Ok<"/api/admin/models", "get">;
export type AdminModel = AdminModels["models"][number];
export type AdminUpstream = AdminModel["upstreams"][number];
/** A model's prefix caches on one llm-server upstream (host-memory KV states, prompt reuse). */
export type PrefixCache = NonNullable<AdminUpstream["prefix_cache"]>;
/** GET /api/admin/model-access: who may use which model, and per-model daily token limits. */
export type ModelAccess = Ok<"/api/admin/model-access", "get">;
/** Allow or deny of one model for a role or one user (shown by email). */
export type ModelRule = ModelAccess["rules"][number];
/** A daily token limit of one model for a role or one user (0 = none of this model). */
export type ModelLimit = ModelAccess["limits"][number];
/** POST /api/admin/model-access and /api/admin/model-limits: for a role or for an email. */
export type ModelSubjectBody = { model: string } & ({ role: Role } | { email: string });
