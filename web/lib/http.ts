/** Small HTTP helpers shared by the API client and the chat stream. */

/** Parses a Retry-After value (delay in seconds or an HTTP date) into seconds from `nowMs`. */
export function parseRetryAfter(
  value: string | null | undefined,
  nowMs = Date.now(),
): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.ceil(Number(trimmed));
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, Math.ceil((date - nowMs) / 1000));
}

export function retryAfterFrom(headers: Headers): number | undefined {
  return parseRetryAfter(headers.get("retry-after") ?? headers.get("x-retry-after"));
}

/** An error answered by the gateway (or a failure to reach it: status 0). */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  /** Seconds to wait before retrying, from Retry-After, when given. */
  readonly retryAfter: number | undefined;

  constructor(status: number, code: string, message: string, retryAfter?: number) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/** Builds an ApiError from a non-2xx response with a `{error:{code,message}}` (or `{code,message}`) body. */
export async function errorFromResponse(response: Response): Promise<ApiError> {
  let code = `HTTP_${response.status}`;
  let message = response.statusText || `Request failed with status ${response.status}`;
  try {
    const body: unknown = await response.json();
    if (body && typeof body === "object") {
      const inner = (body as { error?: unknown }).error;
      const src = (inner && typeof inner === "object" ? inner : body) as Record<string, unknown>;
      if (typeof src.code === "string") code = src.code;
      else if (typeof src.type === "string") code = src.type;
      if (typeof src.message === "string" && src.message) message = src.message;
    }
  } catch {
    // not JSON: keep the status text
  }
  return new ApiError(response.status, code, message, retryAfterFrom(response.headers));
}

/** "in 42 s", "in 5 min", "at <date, time>" — when to try again. */
export function formatWait(seconds: number, nowMs = Date.now()): string {
  if (seconds < 90) return `in ${seconds} s`;
  if (seconds < 3600) return `in ${Math.ceil(seconds / 60)} min`;
  const at = new Date(nowMs + seconds * 1000);
  return `at ${at.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" })}`;
}
