import { maxHeaderSize, STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";
import type { ErrorEnvelopeT, ErrorType } from "./schemas.js";

/** An error with an HTTP status and a stable code; the error handler renders it. */
export class HttpError extends Error {
  readonly statusCode: number;
  readonly code: string;
  /** Response headers that go with the error (Retry-After, RateLimit-*). */
  readonly headers: Record<string, string>;

  constructor(
    statusCode: number,
    code: string,
    message: string,
    headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "HttpError";
    this.statusCode = statusCode;
    this.code = code;
    this.headers = headers;
  }
}

export const unauthorized = (message = "Sign in first") =>
  new HttpError(401, "UNAUTHORIZED", message);
export const forbidden = (message = "Not allowed") => new HttpError(403, "FORBIDDEN", message);
export const notFound = (what: string) => new HttpError(404, "NOT_FOUND", `${what} not found`);
export const badRequest = (message: string, code = "BAD_REQUEST") =>
  new HttpError(400, code, message);

/** Seconds a client is asked to wait when the database is unavailable. */
export const DATABASE_RETRY_AFTER_S = 5;
export const DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE";
/** Seconds a client is asked to wait when the shared limit store (Redis) is unreachable. */
const LIMITS_RETRY_AFTER_S = 5;

/** A 503 for a dependency that is down for now: the client is told when to retry. */
function temporarilyUnavailable(
  code: string,
  message: string,
  retryAfterS: number,
  cause: unknown,
): HttpError {
  const err = new HttpError(503, code, message, { "retry-after": String(retryAfterS) });
  if (cause !== undefined) err.cause = cause;
  return err;
}

/**
 * 503 for a database that is locked, read-only, full or unreachable: a temporary state the
 * client can retry after, never its fault (4xx) nor a bug (500). `cause` is logged, not sent.
 */
export const databaseUnavailable = (cause?: unknown): HttpError =>
  temporarilyUnavailable(
    DATABASE_UNAVAILABLE,
    "The database is unavailable; try again in a few seconds",
    DATABASE_RETRY_AFTER_S,
    cause,
  );

/**
 * 503 for a limit store (Redis) that cannot be reached: limits fail closed — no request is
 * admitted uncounted — and the client is told to retry, never a 500.
 */
export const limitsUnavailable = (cause?: unknown): HttpError =>
  temporarilyUnavailable(
    "LIMITS_UNAVAILABLE",
    "Usage limits cannot be checked right now; try again in a few seconds",
    LIMITS_RETRY_AFTER_S,
    cause,
  );

/** Maps an HTTP status to the default error code of the envelope. */
export function codeForStatus(status: number): string {
  switch (status) {
    case 400:
      return "BAD_REQUEST";
    case 401:
      return "UNAUTHORIZED";
    case 403:
      return "FORBIDDEN";
    case 404:
      return "NOT_FOUND";
    case 405:
      return "METHOD_NOT_ALLOWED";
    case 408:
      return "REQUEST_TIMEOUT";
    case 409:
      return "CONFLICT";
    case 413:
      return "PAYLOAD_TOO_LARGE";
    case 415:
      return "UNSUPPORTED_MEDIA_TYPE";
    case 431:
      return "HEADERS_TOO_LARGE";
    case 429:
      return "RATE_LIMITED";
    case 503:
      return "SERVICE_UNAVAILABLE";
    default:
      return status >= 500 ? "INTERNAL_ERROR" : "BAD_REQUEST";
  }
}

/** The envelope's `error.type` for a status (OpenAI's names, on every route). */
export function openAiType(status: number): ErrorType {
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status === 429) return "rate_limit_error";
  return status >= 500 ? "server_error" : "invalid_request_error";
}

/** The OpenAI-compatible error body: `{error:{message,type,param,code}}`. */
export function openAiError(status: number, code: string, message: string) {
  return { error: { message, type: openAiType(status), param: null, code: code.toLowerCase() } };
}

/** The gateway's error body: `{error:{message,type,code}}` (code upper-case, stable). */
export function gatewayError(status: number, code: string, message: string): ErrorEnvelopeT {
  return { error: { message, type: openAiType(status), code } };
}

/**
 * The error body for a request: OpenAI's exact shape under `/v1/` (so OpenAI SDKs
 * understand it: lower-case code, `param`), the gateway's envelope everywhere else.
 */
export function errorPayload(url: string, status: number, code: string, message: string) {
  if (requestPath(url).startsWith("/v1/")) return openAiError(status, code, message);
  return gatewayError(status, code, message);
}

/**
 * The path of a request target. The router also accepts absolute-form targets
 * (`POST http://host/v1/...`) and routes them by their path, so the envelope must be chosen
 * by the path too: the `/v1` routes' response schema requires OpenAI's shape.
 */
export function requestPath(url: string): string {
  return url.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, "");
}

/** Sockets already answered by `answerClientError` (the parser reports each later chunk too). */
const answered = new WeakSet<Duplex>();

/**
 * Fastify's `clientErrorHandler`: a request Node's parser refused before any route saw it
 * (headers over `maxHeaderSize`, a malformed request, a request that took too long) gets
 * its status — 431, 400, 408 — in the envelope. The connection is half-closed rather than
 * destroyed: a client still sending the rest of its huge headers would otherwise get a
 * connection reset (closing with unread data sends RST) instead of the answer.
 */
export function answerClientError(err: Error & { code?: string }, socket: Duplex): void {
  if (err.code === "ECONNRESET" || socket.destroyed || answered.has(socket)) return;
  answered.add(socket);
  const [status, message] =
    err.code === "HPE_HEADER_OVERFLOW"
      ? [431, `Request headers are too large (at most ${maxHeaderSize / 1024} KiB)`]
      : err.code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? [408, "The request took too long to arrive"]
        : [400, "Malformed HTTP request"];
  const body = JSON.stringify(gatewayError(status, codeForStatus(status), message));
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.end();
  // Read and discard what the client still sends; give up on it after a few seconds.
  socket.resume();
  setTimeout(() => socket.destroy(), 5_000).unref();
}
