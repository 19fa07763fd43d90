/** Turns errors into what the user should read and do. */
import { ApiError, formatWait } from "./http";

export interface ErrorView {
  title: string;
  detail: string;
  /** Whether offering "Retry" makes sense. */
  retryable: boolean;
}

/** `text` ending as a sentence, so that another can follow it. */
const sentence = (text: string) => (/[.!?]$/.test(text.trim()) ? text.trim() : `${text.trim()}.`);

/** Whether a refused request is about its model: not allowed to this user, or not served. */
export function isModelError(err: unknown): boolean {
  if (!(err instanceof ApiError)) return false;
  if (err.status === 403) return err.code === "MODEL_FORBIDDEN";
  // The gateway's or llm-server's MODEL_NOT_FOUND; a missing conversation is NOT_FOUND.
  return err.status === 404 && err.code.includes("MODEL");
}

export function describeError(err: unknown, nowMs = Date.now()): ErrorView {
  if (err instanceof ApiError) {
    const wait = err.retryAfter !== undefined ? formatWait(err.retryAfter, nowMs) : undefined;
    if (isModelError(err)) {
      return {
        title: "Model not available",
        detail: `${sentence(err.message)} Choose another model and send again.`,
        retryable: false,
      };
    }
    switch (err.status) {
      case 0:
        return {
          title: "Connection lost",
          detail: `${err.message} Check your connection and retry.`,
          retryable: true,
        };
      case 401:
        return {
          title: "Signed out",
          detail: "Your session expired. Sign in again.",
          retryable: false,
        };
      case 403:
        return { title: "Not allowed", detail: err.message, retryable: false };
      case 404:
        return { title: "Not found", detail: err.message, retryable: false };
      case 429:
        return {
          title: "Quota reached",
          detail: `${err.message}${wait ? ` You can try again ${wait}.` : ""}`,
          retryable: true,
        };
      case 502:
      case 503:
        return {
          title: "Server busy",
          detail: `${err.message}${wait ? ` Try again ${wait}.` : " Try again in a moment."}`,
          retryable: true,
        };
      default:
        return { title: "Something went wrong", detail: err.message, retryable: err.status >= 500 };
    }
  }
  const message = err instanceof Error ? err.message : String(err);
  return { title: "Something went wrong", detail: message, retryable: true };
}
