import type { AuthUser } from "../auth/principal.js";
import type { ApiKeyInfo as ApiKeyRecord } from "../services/api-keys.js";

/** The signed-in account as the API shows it (`Me`). */
export function meBody(u: AuthUser) {
  return {
    id: u.id,
    email: u.email,
    name: u.name,
    role: u.role,
    twoFactorEnabled: u.twoFactorEnabled,
    pending: u.pending,
    createdAt: u.createdAt.toISOString(),
  };
}

/** An account as admins see it (`AdminUser`). */
export function adminUserBody(u: AuthUser) {
  return { ...meBody(u), disabled: u.disabled };
}

/** A date as an ISO string, null kept. */
export const iso = (d: Date | null) => (d ? d.toISOString() : null);

/** An API key as the API shows it (`ApiKeyInfo`): dates as ISO strings, never the key. */
export function apiKeyBody(k: ApiKeyRecord) {
  return {
    ...k,
    createdAt: k.createdAt.toISOString(),
    expiresAt: iso(k.expiresAt),
    lastUsedAt: iso(k.lastUsedAt),
  };
}
