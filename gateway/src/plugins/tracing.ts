import { type Context, context, type Span, SpanStatusCode } from "@opentelemetry/api";
import type { FastifyPluginAsync, FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import { Tracing } from "../services/tracing.js";
import type { GatewayServices } from "./services.js";

export interface TracingPluginOptions {
  /** The process's tracing (server.ts builds it from OTEL_*); default: propagation only. */
  tracing?: Tracing | undefined;
  /** The llm-servers' base URLs: the only calls that carry a traceparent out. */
  upstreams: readonly string[];
}

/**
 * One server span per request (route template, method, status; never the URL's query, a
 * header or a body), the active context for its handler, and child spans around the response
 * cache lookup and the limit admission. Register it first: its hooks must run before the
 * others'.
 */
const tracingPlugin: FastifyPluginAsync<TracingPluginOptions> = async (app, options) => {
  const tracing = options.tracing ?? new Tracing({ env: {} });
  tracing.setUpstreams(options.upstreams);
  for (const warning of tracing.warnings) app.log.warn(warning);
  const contexts = new WeakMap<FastifyRequest, Context>();

  app.addHook("onRequest", (request, reply, done) => {
    // Off and nothing to pass on: no work at all on the request path.
    if (!tracing.recording && request.headers.traceparent === undefined) return done();
    const route = request.routeOptions.url ?? "unmatched";
    const started = tracing.startRequest(request.headers, `${request.method} ${route}`, {
      "http.request.method": request.method,
      "http.route": route,
      "gateway.request_id": String(request.id),
    });
    if (!started) return done();
    contexts.set(request, started.context);
    reply.raw.once("close", () => endRequest(started.span, reply.statusCode, reply.raw));
    context.with(started.context, done);
  });
  // The body was read from the socket outside the request's context: enter it again for the
  // handler (and every hook after this one).
  app.addHook("preHandler", (request, _reply, done) => {
    const active = contexts.get(request);
    if (active) context.with(active, done);
    else done();
  });

  if (tracing.recording) {
    // Once every plugin is registered: the services the completion pipeline holds.
    app.addHook("onReady", async () => {
      if (app.hasDecorator("services")) traceServices(app.services, tracing);
    });
  }
  app.addHook("onClose", async () => tracing.shutdown());
};

function endRequest(span: Span, status: number, raw: { writableEnded: boolean }): void {
  span.setAttribute("http.response.status_code", status);
  if (status >= 500) {
    span.setAttribute("error.type", String(status));
    span.setStatus({ code: SpanStatusCode.ERROR });
  }
  // The client left (or the connection broke) before the answer ended.
  if (!raw.writableEnded) span.setAttribute("gateway.client_closed", true);
  span.end();
}

/**
 * Wraps the cache lookup and the limit admission of these service instances (the ones the
 * completion pipeline holds) in spans, so the pipeline itself carries no tracing code.
 */
export function traceServices(
  services: Pick<GatewayServices, "cache" | "limits" | "store">,
  tracing: Tracing,
): void {
  const { cache, limits } = services;
  const get = cache.get.bind(cache);
  cache.get = (key) =>
    tracing.inSpan(
      "cache lookup",
      () => get(key),
      (hit) => ({
        "cache.hit": hit !== undefined,
        "cache.store": services.store,
      }),
    );
  const admit = limits.admit.bind(limits);
  limits.admit = (caller, request) =>
    tracing.inSpan(
      "limit admission",
      () => admit(caller, request),
      (admission) => ({
        "limits.concurrent": admission.concurrent,
      }),
    );
}

export default fp(tracingPlugin, { name: "tracing", fastify: "5.x" });
