import { HttpError } from "../errors.js";

/** How an LLM request is recorded in its usage row and metrics. */
export interface Outcome {
  status: number;
  outcome: "ok" | "error" | "cut" | "cancelled" | "rejected";
  errorCode: string | null;
}

/**
 * The one classification of an LLM request that failed, for every route: a client that
 * went away is 499 `cancelled` (whatever the error its leaving caused); the gateway ending
 * a request (shutdown, revoked access) is that error's status; a limit is 429 `rejected`;
 * another HttpError keeps its status and code; anything else is the model server's
 * failure, 502 `UPSTREAM_ERROR`.
 */
export function failureOutcome(err: unknown, signal: AbortSignal): Outcome {
  const reason: unknown = signal.aborted ? signal.reason : undefined;
  if (signal.aborted && !(reason instanceof HttpError)) {
    return { status: 499, outcome: "cancelled", errorCode: null };
  }
  const e = reason instanceof HttpError ? reason : err instanceof HttpError ? err : null;
  if (!e) return { status: 502, outcome: "error", errorCode: "UPSTREAM_ERROR" };
  const outcome = e.statusCode === 429 ? "rejected" : "error";
  return { status: e.statusCode, outcome, errorCode: e.code };
}
