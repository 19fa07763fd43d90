/**
 * OpenTelemetry for the web server's calls to the gateway: each proxied request is a client
 * span (service "web"), child of the browser's `traceparent` when it sent one, and the
 * gateway gets a `traceparent` naming that span.
 *
 * Off unless OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set: then
 * no provider or exporter exists and the request's own headers go through untouched (a
 * browser's traceparent reaches the gateway as it came). No global OpenTelemetry state is
 * registered: Next.js's own instrumentation stays off.
 */
import {
  type Context,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  BatchSpanProcessor,
  type SpanExporter,
  type SpanProcessor,
  TracerProvider,
} from "@opentelemetry/sdk-trace";

type Env = Record<string, string | undefined>;

export const SERVICE_NAME = "web";

/** True when the environment asks for spans to be exported over OTLP. */
export function exporting(env: Env): boolean {
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT;
  const disabled = (env.OTEL_SDK_DISABLED ?? "").trim().toLowerCase() === "true";
  const exporter = (env.OTEL_TRACES_EXPORTER ?? "otlp").trim().toLowerCase();
  return Boolean(endpoint) && !disabled && exporter === "otlp";
}

export interface WebTracing {
  tracer: Tracer | null;
  shutdown(): Promise<void>;
}

/**
 * The web's tracer: recording into `processor` (tests), or the OTLP exporter when the
 * environment asks for it, or none (`tracer` null).
 */
export function createTracing(
  env: Env,
  options: { processor?: SpanProcessor; exporter?: () => SpanExporter } = {},
): WebTracing {
  let processor = options.processor;
  if (!processor && exporting(env)) {
    const exporter = (options.exporter ?? (() => new OTLPTraceExporter()))();
    processor = new BatchSpanProcessor({ exporter });
  }
  if (!processor) return { tracer: null, shutdown: async () => undefined };
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ "service.name": env.OTEL_SERVICE_NAME || SERVICE_NAME }),
    spanProcessors: [processor],
  });
  return { tracer: provider.getTracer(SERVICE_NAME), shutdown: () => provider.shutdown() };
}

let processTracing: WebTracing | undefined;
/** The process's tracing, built from process.env on first use. */
export function webTracing(): WebTracing {
  processTracing ??= createTracing(process.env);
  return processTracing;
}

const propagator = new W3CTraceContextPropagator();

/**
 * A path without what may identify a person or hold a secret (ids, reset tokens): segments
 * that are not plain lower-case words (or an API version, v1) become `*`.
 */
export function routeOf(path: string): string {
  const segments = path
    .split("?")[0]
    ?.split("/")
    .filter(Boolean)
    .map((s) => (/^([a-z][a-z_-]{0,31}|v[0-9]{1,2})$/.test(s) ? s : "*"));
  return `/${(segments ?? []).join("/")}`;
}

/** A call to the gateway in flight: the headers to add, and how to end its span. */
export interface GatewayCall {
  headers: Record<string, string>;
  /** Ends the span with the gateway's status, or the error that stopped the call. */
  end(result: { status: number } | { error: unknown }): void;
  /** `body` passed through, the span ending with its last chunk (a stream's whole length). */
  watch(body: ReadableStream<Uint8Array> | null): ReadableStream<Uint8Array> | null;
}

const NOTHING: GatewayCall = {
  headers: {},
  end: () => undefined,
  watch: (body) => body,
};

/**
 * Starts the client span of a call to the gateway for `request` (a browser's), child of its
 * traceparent if any. With tracing off: nothing to add, nothing to end.
 */
export function startGatewayCall(
  request: Request,
  tracing: WebTracing = webTracing(),
): GatewayCall {
  const { tracer } = tracing;
  if (!tracer) return NOTHING;
  const parent: Context = propagator.extract(ROOT_CONTEXT, request.headers, {
    keys: (h) => [...h.keys()],
    get: (h, key) => h.get(key) ?? undefined,
  });
  const method = request.method.toUpperCase();
  const route = routeOf(new URL(request.url).pathname);
  const span: Span = tracer.startSpan(
    `${method} ${route}`,
    {
      kind: SpanKind.CLIENT,
      attributes: { "http.request.method": method, "http.route": route },
    },
    parent,
  );
  const headers: Record<string, string> = {};
  propagator.inject(trace.setSpan(parent, span), headers, {
    set: (carrier, key, value) => {
      carrier[key] = value;
    },
  });
  let ended = false;
  const finish = () => {
    if (!ended) span.end();
    ended = true;
  };
  return {
    headers,
    end(result) {
      if ("status" in result) {
        span.setAttribute("http.response.status_code", result.status);
        if (result.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      } else {
        const error = result.error;
        span.setAttribute("error.type", error instanceof Error ? error.name : "Error");
        span.setStatus({ code: SpanStatusCode.ERROR });
        finish();
      }
    },
    watch(body) {
      if (!body) {
        finish();
        return body;
      }
      // Ends with the last chunk, or when the browser stops reading (it left).
      const reader = body.getReader();
      return new ReadableStream<Uint8Array>({
        async pull(controller) {
          try {
            const { done, value } = await reader.read();
            if (done) {
              finish();
              controller.close();
            } else controller.enqueue(value);
          } catch (err) {
            finish();
            controller.error(err);
          }
        },
        cancel(reason) {
          finish();
          return reader.cancel(reason);
        },
      });
    },
  };
}
