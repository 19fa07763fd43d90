import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyRequest } from "fastify";

const REDACTED = "[redacted]";

/**
 * The request URL as it may be logged. Under `/api/auth` (in any spelling: dot segments,
 * percent-encoding, case) the query string is dropped — OAuth callbacks carry `code=` and
 * `state=`, verification links `token=` — and the token segment of a password-reset link
 * (`/reset-password/<token>`, valid for an hour) is replaced. Other URLs are kept whole.
 */
export function redactUrl(url: string): string {
  const q = url.indexOf("?");
  const path = q === -1 ? url : url.slice(0, q);
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    decoded = path;
  }
  if (!/\/api\/+auth/i.test(decoded.replaceAll("\\", "/"))) return url;
  const bare = path.replace(/(reset-password)(\/|%2f)[^/]+/gi, `$1/${REDACTED}`);
  return q === -1 ? bare : `${bare}?${REDACTED}`;
}

/** Fastify's `req` log serializer with the URL passed through `redactUrl`. */
export function requestSerializer(req: FastifyRequest): Record<string, unknown> {
  return {
    method: req.method,
    url: redactUrl(req.url),
    host: req.host,
    remoteAddress: req.ip,
    remotePort: req.socket?.remotePort,
  };
}

/**
 * Compares a secret the client sent with the configured one in constant time: both are
 * hashed first, so neither the content nor the length leaks through timing.
 */
export function safeEqual(given: string | undefined, expected: string): boolean {
  const digest = (s: string) => createHash("sha256").update(s, "utf8").digest();
  return timingSafeEqual(digest(given ?? ""), digest(expected)) && given !== undefined;
}
