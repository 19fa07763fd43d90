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
 */
import { gatewayUrl } from "./env";

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
  options: { base?: string; fetch?: typeof fetch } = {},
): Promise<Response> {
  const base = options.base ?? gatewayUrl();
  const doFetch = options.fetch ?? fetch;
  const method = request.method.toUpperCase();
  const hasBody = method !== "GET" && method !== "HEAD" && request.body !== null;

  const init: RequestInit & { duplex?: "half" } = {
    method,
    headers: forwardRequestHeaders(request),
    redirect: "manual",
    cache: "no-store",
    signal: request.signal,
  };
  if (hasBody) {
    init.body = request.body;
    init.duplex = "half";
  }

  let upstream: Response;
  try {
    upstream = await doFetch(upstreamUrl(base, request.url), init);
  } catch (err) {
    if (request.signal.aborted) {
      return new Response(null, { status: 499 });
    }
    const message = err instanceof Error ? err.message : String(err);
    return Response.json(
      { error: { type: "bad_gateway", message: `gateway unreachable: ${message}` } },
      { status: 502 },
    );
  }

  return new Response(upstream.body, {
    status: upstream.status,
    statusText: upstream.statusText,
    headers: forwardResponseHeaders(upstream.headers),
  });
}
