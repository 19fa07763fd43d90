/**
 * Streaming reverse proxy from the web origin to the gateway.
 *
 * Used by the route handlers under app/api, app/v1 and app/docs so that the
 * browser only ever talks to the web origin. Implemented as route handlers
 * (not next.config rewrites) because rewrites are serialised into
 * .next/routes-manifest.json by `next build`: a GATEWAY_URL given only to
 * `next start` would be ignored. Here the gateway URL is read per request.
 *
 * Bodies are streamed in both directions (no buffering), so Server-Sent
 * Events from the gateway reach the browser chunk by chunk.
 *
 * A request body over the gateway's limit is refused here with the gateway's
 * own 413: the gateway answers an oversized body and closes the connection
 * while the body is still being sent, so the proxy's fetch fails with EPIPE
 * and would otherwise report the gateway as unreachable.
 */
import { gatewayUrl } from "./env";
import { startGatewayCall, type WebTracing } from "./tracing";

/** The gateway's body limit (Fastify `bodyLimit` in gateway/src/app.ts): 1 MiB. */
export const MAX_BODY_BYTES = 1_048_576;

/**
 * An error answered by the proxy itself, in the gateway's envelope for that path:
 * OpenAI's shape under /v1/ (`param`, lower-case code), `{message,type,code}` elsewhere.
 */
export function errorResponse(
  requestUrl: string,
  status: number,
  code: string,
  message: string,
): Response {
  const type = status >= 500 ? "server_error" : "invalid_request_error";
  const body = new URL(requestUrl).pathname.startsWith("/v1/")
    ? { error: { message, type, param: null, code: code.toLowerCase() } }
    : { error: { message, type, code } };
  return Response.json(body, { status });
}

function tooLarge(requestUrl: string): Response {
  return errorResponse(
    requestUrl,
    413,
    "PAYLOAD_TOO_LARGE",
    `Request body is too large: the limit is ${MAX_BODY_BYTES} bytes (1 MiB)`,
  );
}

/** How much of an oversized body is still read (and dropped) so the client gets its 413. */
const DRAIN_BYTES = 8 * MAX_BODY_BYTES;

/**
 * `body` passed through unchanged while it stays within `limit` bytes; past it, the stream
 * fails (so the upstream request is abandoned) and `exceeded()` turns true. The rest of the
 * client's body is then read and dropped (up to DRAIN_BYTES) rather than cancelled:
 * cancelling resets the client's connection before it can read the 413.
 */
export function limitBody(
  body: ReadableStream<Uint8Array>,
  limit: number,
): { stream: ReadableStream<Uint8Array>; exceeded: () => boolean } {
  const reader = body.getReader();
  let seen = 0;
  let over = false;
  const drain = async () => {
    let dropped = 0;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        dropped += value.byteLength;
        if (dropped > DRAIN_BYTES) {
          await reader.cancel();
          return;
        }
      }
    } catch {
      // The client went away: nothing left to drain.
    }
  };
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await reader.read();
      if (done) {
        controller.close();
        return;
      }
      seen += value.byteLength;
      if (seen > limit) {
        over = true;
        controller.error(new RangeError(`request body over ${limit} bytes`));
        void drain();
        return;
      }
      controller.enqueue(value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
  return { stream, exceeded: () => over };
}

/** Hop-by-hop headers (RFC 9110 §7.6.1) plus ones fetch must compute itself. */
const DROP_REQUEST_HEADERS = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
  "content-length",
  "expect",
]);

/** fetch() already decoded the body, so length/encoding no longer apply. */
const DROP_RESPONSE_HEADERS = new Set([
  "connection",
  "keep-alive",
  "transfer-encoding",
  "trailer",
  "upgrade",
  "content-encoding",
  "content-length",
]);

export function upstreamUrl(base: string, requestUrl: string): string {
  const url = new URL(requestUrl);
  return `${base}${url.pathname}${url.search}`;
}

export function forwardRequestHeaders(request: Request): Headers {
  const out = new Headers();
  for (const [name, value] of request.headers) {
    if (!DROP_REQUEST_HEADERS.has(name.toLowerCase())) out.append(name, value);
  }
  const url = new URL(request.url);
  const prior = request.headers.get("x-forwarded-for");
  if (prior) out.set("x-forwarded-for", prior);
  out.set("x-forwarded-host", request.headers.get("host") ?? url.host);
  out.set("x-forwarded-proto", url.protocol.replace(/:$/, ""));
  return out;
}

export function forwardResponseHeaders(upstream: Headers): Headers {
  const out = new Headers();
  for (const [name, value] of upstream) {
    if (!DROP_RESPONSE_HEADERS.has(name.toLowerCase())) out.append(name, value);
  }
  if ((upstream.get("content-type") ?? "").startsWith("text/event-stream")) {
    // Ask any intermediary (nginx & co.) not to buffer the stream.
    out.set("x-accel-buffering", "no");
  }
  return out;
}

export async function proxyToGateway(
  request: Request,
  options: { base?: string; fetch?: typeof fetch; tracing?: WebTracing } = {},
): Promise<Response> {
  const base = options.base ?? gatewayUrl();
  const doFetch = options.fetch ?? fetch;
  const method = request.method.toUpperCase();
  const hasBody = method !== "GET" && method !== "HEAD" && request.body !== null;
  // Browsers send Content-Length: refuse an oversized body before reading any of it.
  if (hasBody && Number(request.headers.get("content-length") ?? 0) > MAX_BODY_BYTES) {
    return tooLarge(request.url);
  }

  // A traceparent naming the web's span of this call (tracing on; lib/tracing.ts).
  const call = startGatewayCall(request, options.tracing);
  const headers = forwardRequestHeaders(request);
  for (const [name, value] of Object.entries(call.headers)) headers.set(name, value);
  const init: RequestInit & { duplex?: "half" } = {
    method,
    headers,
    redirect: "manual",
    cache: "no-store",
    signal: request.signal,
  };
  // A body without a length (chunked) is counted as it streams.
  let exceeded = () => false;
  if (hasBody && request.body) {
    const limited = limitBody(request.body, MAX_BODY_BYTES);
    exceeded = limited.exceeded;
    init.body = limited.stream;
    init.duplex = "half";
  }

  let upstream: Response;
  try {
    upstream = await doFetch(upstreamUrl(base, request.url), init);
  } catch (err) {
    call.end({ error: err });
    if (request.signal.aborted) {
      return new Response(null, { status: 499 });
    }
    if (exceeded()) return tooLarge(request.url);
    const message = err instanceof Error ? err.message : String(err);
    return errorResponse(request.url, 502, "BAD_GATEWAY", `gateway unreachable: ${message}`);
  }

  call.end({ status: upstream.status });
  return new Response(call.watch(upstream.body), {
    status: upstream.status,
    statusText: upstream.statusText,
    headers: forwardResponseHeaders(upstream.headers),
  });
}
