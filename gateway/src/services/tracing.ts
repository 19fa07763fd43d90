/**
 * OpenTelemetry tracing for the gateway: W3C `traceparent` in from web and API clients, out to
 * the llm-servers on every upstream attempt, and spans for a request, its upstream calls,
 * its cache lookup and its limit admission.
 *
 * Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set:
 * then no tracer provider, processor or exporter exists, and the only work left is context
 * propagation — an incoming `traceparent` is passed on to the llm-server as it came.
 */
import diagnostics from "node:diagnostics_channel";
import { createRequire } from "node:module";
import {
  type Context,
  context,
  createContextKey,
  ProxyTracerProvider,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  type TextMapSetter,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { type Resource, resourceFromAttributes } from "@opentelemetry/resources";
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  type Sampler,
  type SpanExporter,
  type SpanProcessor,
  TraceIdRatioBasedSampler,
  TracerProvider,
} from "@opentelemetry/sdk-trace";
import { HttpError } from "../errors.js";

type Env = Record<string, string | undefined>;

export const SERVICE_NAME = "gateway";

/** The settings of the standard OTEL_* variables this module honours. */
export interface TracingSettings {
  /** True when spans are recorded and exported (an OTLP endpoint is set, the SDK enabled). */
  exporting: boolean;
  sampler: Sampler;
  batch: {
    scheduledDelayMillis?: number;
    maxQueueSize?: number;
    maxExportBatchSize?: number;
    exportTimeoutMillis?: number;
  };
  /** Values that were ignored, each with the reason (logged at start). */
  warnings: string[];
}

function ratio(env: Env, warnings: string[]): number {
  const raw = env.OTEL_TRACES_SAMPLER_ARG;
  if (raw === undefined || raw === "") return 1;
  const value = Number(raw);
  if (Number.isFinite(value) && value >= 0 && value <= 1) return value;
  warnings.push(`OTEL_TRACES_SAMPLER_ARG=${raw} is not a ratio from 0 to 1; using 1`);
  return 1;
}

/** OTEL_TRACES_SAMPLER (+ _ARG), as the specification names them; default parentbased_always_on. */
function samplerFrom(env: Env, warnings: string[]): Sampler {
  const name = (env.OTEL_TRACES_SAMPLER ?? "").trim().toLowerCase();
  switch (name) {
    case "always_on":
      return new AlwaysOnSampler();
    case "always_off":
      return new AlwaysOffSampler();
    case "traceidratio":
      return new TraceIdRatioBasedSampler(ratio(env, warnings));
    case "parentbased_always_off":
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case "parentbased_traceidratio":
      return new ParentBasedSampler({
        root: new TraceIdRatioBasedSampler(ratio(env, warnings)),
      });
    case "":
    case "parentbased_always_on":
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    default:
      warnings.push(`OTEL_TRACES_SAMPLER=${name} is not supported; using parentbased_always_on`);
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}

function positive(env: Env, name: string, warnings: string[]): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === "") return undefined;
  const value = Number(raw);
  if (Number.isInteger(value) && value > 0) return value;
  warnings.push(`${name}=${raw} is not a positive integer; using the default`);
  return undefined;
}

/** Reads the OTEL_* variables: whether to export, the sampler, the batch processor's bounds. */
export function tracingSettings(env: Env): TracingSettings {
  const warnings: string[] = [];
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT;
  const disabled = (env.OTEL_SDK_DISABLED ?? "").trim().toLowerCase() === "true";
  const exporter = (env.OTEL_TRACES_EXPORTER ?? "otlp").trim().toLowerCase();
  if (exporter !== "otlp" && exporter !== "none") {
    warnings.push(`OTEL_TRACES_EXPORTER=${exporter} is not supported (otlp or none)`);
  }
  const batch: TracingSettings["batch"] = {};
  for (const [key, name] of [
    ["scheduledDelayMillis", "OTEL_BSP_SCHEDULE_DELAY"],
    ["maxQueueSize", "OTEL_BSP_MAX_QUEUE_SIZE"],
    ["maxExportBatchSize", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"],
    ["exportTimeoutMillis", "OTEL_BSP_EXPORT_TIMEOUT"],
  ] as const) {
    const value = positive(env, name, warnings);
    if (value !== undefined) batch[key] = value;
  }
  return {
    exporting: Boolean(endpoint) && !disabled && exporter === "otlp",
    sampler: samplerFrom(env, warnings),
    batch,
    warnings,
  };
}

export interface TracingOptions {
  /** The environment holding the OTEL_* variables (default process.env). */
  env?: Env;
  /**
   * Where finished spans go instead of the OTLP exporter (tests: a SimpleSpanProcessor over an
   * InMemorySpanExporter); tracing is on whatever the environment says.
   */
  spanProcessor?: SpanProcessor;
  /** Builds the OTLP exporter (default: OTLPTraceExporter, configured by OTEL_EXPORTER_OTLP_*). */
  exporter?: () => SpanExporter;
}

/**
 * service.name "gateway", unless OTEL_SERVICE_NAME says otherwise; OTEL_RESOURCE_ATTRIBUTES
 * (`key=value,…`, percent-encoded) adds to it, as the specification says.
 */
export function resourceFrom(env: Env): Resource {
  const attributes: Record<string, string> = {};
  for (const pair of (env.OTEL_RESOURCE_ATTRIBUTES ?? "").split(",")) {
    const at = pair.indexOf("=");
    if (at <= 0) continue;
    try {
      attributes[decodeURIComponent(pair.slice(0, at).trim())] = decodeURIComponent(
        pair.slice(at + 1).trim(),
      );
    } catch {
      // a malformed escape: that pair is skipped, as the SDKs do
    }
  }
  attributes["service.name"] = env.OTEL_SERVICE_NAME || attributes["service.name"] || SERVICE_NAME;
  return resourceFromAttributes(attributes);
}

/**
 * The OTLP/HTTP exporter (configured by OTEL_EXPORTER_OTLP_*), loaded only when tracing is on:
 * with it off, the process never loads the exporter and its encoders.
 */
function otlpExporter(): SpanExporter {
  const load = createRequire(import.meta.url);
  const { OTLPTraceExporter } = load(
    "@opentelemetry/exporter-trace-otlp-http",
  ) as typeof import("@opentelemetry/exporter-trace-otlp-http");
  return new OTLPTraceExporter();
}

const propagator = new W3CTraceContextPropagator();

const headerGetter: TextMapGetter<Record<string, string | string[] | undefined>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => carrier[key],
};

/** The tracing of one gateway: its tracer (recording or not) and which origins are upstream. */
export class Tracing {
  /** Spans are recorded (and exported); false: propagation only. */
  readonly recording: boolean;
  readonly tracer: Tracer;
  readonly warnings: readonly string[];
  private readonly provider: TracerProvider | undefined;
  private upstreams = new Set<string>();

  constructor(options: TracingOptions = {}) {
    const settings = tracingSettings(options.env ?? process.env);
    this.warnings = settings.warnings;
    let processor = options.spanProcessor;
    if (!processor && settings.exporting) {
      const exporter = (options.exporter ?? otlpExporter)();
      processor = new BatchSpanProcessor({ exporter, ...settings.batch });
    }
    this.recording = processor !== undefined;
    if (processor) {
      this.provider = new TracerProvider({
        resource: resourceFrom(options.env ?? process.env),
        sampler: settings.sampler,
        spanProcessors: [processor],
      });
      this.tracer = this.provider.getTracer(SERVICE_NAME);
    } else {
      this.provider = undefined;
      // No provider registered anywhere: a non-recording span that carries its parent's ids.
      this.tracer = new ProxyTracerProvider().getTracer(SERVICE_NAME);
    }
    ensureContextManager();
    subscribeUpstreamCalls();
  }

  /** The llm-servers' base URLs: only calls to them carry a traceparent and get a span. */
  setUpstreams(urls: readonly string[]): void {
    this.upstreams = new Set(urls.map((u) => new URL(u).origin));
  }

  isUpstream(origin: string): boolean {
    return this.upstreams.has(origin);
  }

  /**
   * The context of an incoming request: its server span, child of the caller's `traceparent`
   * when it sent a valid one (clients' trace ids are accepted, see README). Null when there is
   * nothing to record or pass on (not recording, and no traceparent came).
   */
  startRequest(
    headers: Record<string, string | string[] | undefined>,
    name: string,
    attributes: Record<string, string>,
  ): { context: Context; span: Span } | null {
    const parent = propagator.extract(ROOT_CONTEXT, headers, headerGetter);
    if (!this.recording && !trace.getSpanContext(parent)) return null;
    const span = this.tracer.startSpan(name, { kind: SpanKind.SERVER, attributes }, parent);
    return { context: trace.setSpan(parent, span).setValue(TRACING, this), span };
  }

  /**
   * Runs `work` in a child span of the active request (none outside a traced request).
   * `describe` adds attributes from the result; an error ends the span with its code.
   */
  async inSpan<T>(
    name: string,
    work: () => Promise<T>,
    describe?: (result: T) => Record<string, string | number | boolean>,
  ): Promise<T> {
    const active = context.active();
    if (!this.recording || active.getValue(TRACING) !== this) return work();
    const span = this.tracer.startSpan(name, { kind: SpanKind.INTERNAL }, active);
    try {
      const result = await context.with(trace.setSpan(active, span), work);
      if (describe) span.setAttributes(describe(result));
      return result;
    } catch (err) {
      endWithError(span, err);
      throw err;
    } finally {
      span.end();
    }
  }

  /** Exports what is still buffered and stops (the app's onClose). */
  async shutdown(): Promise<void> {
    await this.provider?.shutdown();
  }
}

/** Marks a span failed with the error's class and code (never its message: it may quote input). */
export function endWithError(span: Span, err: unknown): void {
  const type =
    err instanceof HttpError ? err.code : err instanceof Error ? err.constructor.name : "Error";
  span.setAttribute("error.type", type);
  span.setStatus({ code: SpanStatusCode.ERROR });
}

/** The context value naming the Tracing a request belongs to (several apps share a process). */
const TRACING = createContextKey("llm-stack gateway tracing");

let contextManagerSet = false;
/**
 * One AsyncLocalStorage context manager for the process, so a request's context follows its
 * awaits down to the upstream call. Registered once; later apps reuse it.
 */
function ensureContextManager(): void {
  if (contextManagerSet) return;
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  contextManagerSet = true;
}

const headerSetter: TextMapSetter<Record<string, string>> = {
  set: (carrier, key, value) => {
    carrier[key] = value;
  },
};

interface UndiciRequest {
  origin?: string | URL;
  method?: string;
  path?: string;
  addHeader(name: string, value: string): unknown;
}
interface UndiciResponse {
  statusCode: number;
}

const upstreamSpans = new WeakMap<object, Span>();
let subscribed = false;

/**
 * Every call undici makes to an llm-server from inside a traced request (each attempt of a
 * retried call is one) gets a client span and a `traceparent` naming it. Through undici's
 * diagnostics channels, so the HTTP client code stays free of tracing; calls to anything but
 * the configured llm-servers (OAuth providers) are left alone and carry no trace ids.
 */
function subscribeUpstreamCalls(): void {
  if (subscribed) return;
  subscribed = true;
  diagnostics.subscribe("undici:request:create", (message) => {
    const { request } = message as { request: UndiciRequest };
    const active = context.active();
    const tracing = active.getValue(TRACING) as Tracing | undefined;
    if (!tracing) return;
    // A throw here would surface as an uncaught exception: parse defensively.
    const url = URL.parse(String(request.origin ?? ""));
    if (!url || !tracing.isUpstream(url.origin)) return;
    const method = request.method ?? "GET";
    const path = (request.path ?? "/").split("?")[0] ?? "/";
    const span = tracing.tracer.startSpan(
      `${method} ${path}`,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          "http.request.method": method,
          "server.address": url.hostname,
          "server.port": Number(url.port || (url.protocol === "https:" ? 443 : 80)),
          "url.full": `${url.origin}${path}`,
        },
      },
      active,
    );
    const carrier: Record<string, string> = {};
    propagator.inject(trace.setSpan(active, span), carrier, headerSetter);
    for (const [name, value] of Object.entries(carrier)) request.addHeader(name, value);
    if (span.isRecording()) upstreamSpans.set(request, span);
  });
  diagnostics.subscribe("undici:request:headers", (message) => {
    const { request, response } = message as { request: object; response: UndiciResponse };
    const span = upstreamSpans.get(request);
    if (!span) return;
    span.setAttribute("http.response.status_code", response.statusCode);
    if (response.statusCode >= 500) {
      span.setAttribute("error.type", String(response.statusCode));
      span.setStatus({ code: SpanStatusCode.ERROR });
    }
  });
  // The span covers the whole answer: a stream's ends with its last byte.
  diagnostics.subscribe("undici:request:trailers", (message) => {
    const { request } = message as { request: object };
    upstreamSpans.get(request)?.end();
    upstreamSpans.delete(request);
  });
  diagnostics.subscribe("undici:request:error", (message) => {
    const { request, error } = message as { request: object; error: unknown };
    const span = upstreamSpans.get(request);
    if (!span) return;
    upstreamSpans.delete(request);
    endWithError(span, error);
    span.end();
  });
}
