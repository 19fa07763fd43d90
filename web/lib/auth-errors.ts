/** Specific messages for better-auth failures (sign in, sign up, 2FA, reset). */
import { formatWait } from "./http";

export interface AuthFailure {
  status?: number;
  code?: string;
  message?: string;
}

export function authErrorMessage(
  error: AuthFailure,
  retryAfter?: number,
  kind: "sign-in" | "sign-up" | "two-factor" | "reset" = "sign-in",
): string {
  const status = error.status ?? 0;
  const code = error.code ?? "";
  if (status === 429) {
    return `Too many attempts. Try again ${retryAfter !== undefined ? formatWait(retryAfter) : "in a minute"}.`;
  }
  if (status === 0) return "The server could not be reached. Check your connection and retry.";
  if (kind === "two-factor" && (status === 401 || code === "INVALID_CODE")) {
    return "That code is not valid. Enter the current 6-digit code from your authenticator app.";
  }
  if (status === 401 || code === "INVALID_EMAIL_OR_PASSWORD") return "Wrong email or password.";
  if (code === "BANNED_USER" || code === "USER_DISABLED" || code === "ACCOUNT_DISABLED") {
    return "This account is disabled. Contact an administrator.";
  }
  if (code === "INVALID_ORIGIN" || code === "MISSING_OR_NULL_ORIGIN") {
    // The server trusts only the origins derived from PUBLIC_URL; the page for other addresses
    // (lib/wrong-address.ts) is skipped when a proxy in front rewrites the Host header.
    return "This page was opened at an address the server is not set up for. Open the app at the address it was configured with (PUBLIC_URL), or ask whoever runs it to add this one.";
  }
  if (code === "EMAIL_NOT_VERIFIED") return "Verify your email address first: check your inbox.";
  if (status === 403) {
    return error.message
      ? `${error.message}`
      : "This account is disabled. Contact an administrator.";
  }
  if (code === "USER_ALREADY_EXISTS" || code === "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL") {
    return "An account with this email already exists. Sign in instead.";
  }
  if (code === "PASSWORD_TOO_SHORT") return "The password is too short (at least 8 characters).";
  return error.message || "Something went wrong. Try again.";
}
