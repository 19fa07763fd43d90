/**
 * Browser-side client for the gateway's JSON API. Every call goes to this
 * origin (`/api/*` is proxied to the gateway) with the session cookie.
 *
 * A 401 means the session expired or is missing: the registered handler
 * (by default a redirect to /sign-in?next=<here>) runs, then the ApiError is thrown.
 */
import { ApiError, errorFromResponse } from "./http";
import type {
  AdminApiKey,
  AdminModels,
  AdminSettings,
  AdminUsage,
  AdminUser,
  AnalyzeResult,
  ApiKey,
  AuthProvider,
  Conversation,
  ConversationSummary,
  CreatedApiKey,
  Invitation,
  InvitationSent,
  KeyLimits,
  ModelAccess,
  ModelInfo,
  ModelLimit,
  ModelRule,
  ModelSubjectBody,
  Role,
  ServersStatus,
  SignupMode,
  UsageGroupBy,
  User,
  UserUsage,
} from "./types";

export { ApiError } from "./http";

type Handler = () => void;

export function signInUrl(next: string): string {
  return `/sign-in?next=${encodeURIComponent(next)}`;
}

let onUnauthorized: Handler = () => {
  if (typeof window === "undefined") return;
  const here = `${window.location.pathname}${window.location.search}`;
  if (!window.location.pathname.startsWith("/sign-in")) window.location.assign(signInUrl(here));
};

/** Replaces the 401 handler (tests); returns the previous one. */
export function setUnauthorizedHandler(handler: Handler): Handler {
  const previous = onUnauthorized;
  onUnauthorized = handler;
  return previous;
}

export function handleUnauthorized(): void {
  onUnauthorized();
}

export interface RequestOptions {
  method?: string;
  body?: unknown;
  signal?: AbortSignal;
  /** Don't run the 401 handler (e.g. probing the session on a public page). */
  quiet401?: boolean;
}

export async function request<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const init: RequestInit = {
    method: options.method ?? (options.body === undefined ? "GET" : "POST"),
    credentials: "same-origin",
    headers: { accept: "application/json" },
    signal: options.signal,
  };
  if (options.body !== undefined) {
    init.headers = { accept: "application/json", "content-type": "application/json" };
    init.body = JSON.stringify(options.body);
  }
  let response: Response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    if (err instanceof DOMException && err.name === "AbortError") throw err;
    throw new ApiError(0, "NETWORK_ERROR", "Connection lost: the server could not be reached.");
  }
  if (!response.ok) {
    const error = await errorFromResponse(response);
    if (response.status === 401 && !options.quiet401) handleUnauthorized();
    throw error;
  }
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

const enc = encodeURIComponent;

export const api = {
  me: (opts?: { quiet401?: boolean }) => request<User>("/api/user", opts),
  updateProfile: (name: string) => request<User>("/api/user", { method: "PATCH", body: { name } }),
  changePassword: (currentPassword: string, newPassword: string) =>
    request<unknown>("/api/user/password", { body: { currentPassword, newPassword } }),
  deleteAccount: (password: string) =>
    request<unknown>("/api/user", { method: "DELETE", body: { password } }),
  usage: (days = 30) => request<UserUsage>(`/api/user/usage?days=${days}`),

  apiKeys: () => request<{ keys: ApiKey[] }>("/api/user/api-keys").then((r) => r.keys),
  createApiKey: (name: string, expiresInDays?: number) =>
    request<CreatedApiKey>("/api/user/api-keys", {
      body: expiresInDays ? { name, expiresInDays } : { name },
    }),
  revokeApiKey: (id: string) =>
    request<unknown>(`/api/user/api-keys/${enc(id)}`, { method: "DELETE" }),

  authProviders: () =>
    request<{ providers: AuthProvider[] }>("/api/auth-providers", { quiet401: true }).then(
      (r) => r.providers,
    ),
  models: (signal?: AbortSignal) =>
    request<{ models: ModelInfo[] }>("/api/models", { signal }).then((r) => r.models),

  conversations: (q?: string) =>
    request<{ conversations: ConversationSummary[] }>(
      q ? `/api/conversations?q=${enc(q)}` : "/api/conversations",
    ).then((r) => r.conversations),
  createConversation: (title?: string) =>
    request<ConversationSummary>("/api/conversations", { body: title ? { title } : {} }),
  conversation: (id: string, signal?: AbortSignal) =>
    request<Conversation>(`/api/conversations/${enc(id)}`, { signal }),
  renameConversation: (id: string, title: string) =>
    request<ConversationSummary>(`/api/conversations/${enc(id)}`, {
      method: "PATCH",
      body: { title },
    }),
  deleteConversation: (id: string) =>
    request<unknown>(`/api/conversations/${enc(id)}`, { method: "DELETE" }),
  exportUrl: (id: string, format: "json" | "markdown") =>
    `/api/conversations/${enc(id)}/export?format=${format}`,

  analyze: (text: string, labels?: string[], signal?: AbortSignal) =>
    request<AnalyzeResult>("/api/analyze", {
      body: labels && labels.length > 0 ? { text, labels } : { text },
      signal,
    }),

  adminUsers: (q?: string) =>
    request<{ users: AdminUser[] }>(q ? `/api/admin/users?q=${enc(q)}` : "/api/admin/users").then(
      (r) => r.users,
    ),
  adminUpdateUser: (id: string, patch: { role?: Role; disabled?: boolean }) =>
    request<AdminUser>(`/api/admin/users/${enc(id)}`, { method: "PATCH", body: patch }),
  adminUsage: (q: { from: string; to: string; groupBy: UsageGroupBy }, signal?: AbortSignal) =>
    request<AdminUsage>(
      `/api/admin/usage?from=${enc(q.from)}&to=${enc(q.to)}&groupBy=${q.groupBy}`,
      { signal },
    ),
  adminServers: () => request<ServersStatus>("/api/admin/servers"),
  adminSettings: () => request<AdminSettings>("/api/admin/settings"),
  adminSetSignupMode: (signupMode: SignupMode) =>
    request<{ signupMode: SignupMode }>("/api/admin/settings", {
      method: "PATCH",
      body: { signupMode },
    }),
  adminInvitations: () =>
    request<{ invitations: Invitation[] }>("/api/admin/invitations").then((r) => r.invitations),
  adminInvite: (email: string, role: Role) =>
    request<InvitationSent>("/api/admin/invitations", { body: { email, role } }),
  adminRevokeInvitation: (id: string) =>
    request<Invitation>(`/api/admin/invitations/${enc(id)}`, { method: "DELETE" }),
  adminApprove: (id: string) =>
    request<AdminUser>(`/api/admin/users/${enc(id)}/approve`, { method: "POST" }),
  adminResetLink: (id: string) =>
    request<{ link: string; expiresInSeconds: number }>(`/api/admin/users/${enc(id)}/reset-link`, {
      method: "POST",
    }),
  adminUserApiKeys: (userId: string) =>
    request<{ keys: AdminApiKey[] }>(`/api/admin/users/${enc(userId)}/api-keys`).then(
      (r) => r.keys,
    ),
  /** Replaces the key's own limits (the gateway's PUT: every field, null = none). */
  adminSetKeyLimits: (id: string, limits: KeyLimits) =>
    request<{ overrides: KeyLimits }>(`/api/admin/api-keys/${enc(id)}/limits`, {
      method: "PUT",
      body: limits,
    }),

  adminModels: (signal?: AbortSignal) => request<AdminModels>("/api/admin/models", { signal }),
  adminModelAccess: (signal?: AbortSignal) =>
    request<ModelAccess>("/api/admin/model-access", { signal }),
  /** Adds or replaces the rule for this model and role or user. */
  adminSetModelRule: (body: ModelSubjectBody & { allow: boolean }) =>
    request<ModelRule>("/api/admin/model-access", { body }),
  adminDeleteModelRule: (id: string) =>
    request<unknown>(`/api/admin/model-access/${enc(id)}`, { method: "DELETE" }),
  /** Adds or replaces the daily token limit for this model and role or user. */
  adminSetModelLimit: (body: ModelSubjectBody & { tokens_per_day: number }) =>
    request<ModelLimit>("/api/admin/model-limits", { body }),
  adminDeleteModelLimit: (id: string) =>
    request<unknown>(`/api/admin/model-limits/${enc(id)}`, { method: "DELETE" }),
};
