import { HttpError } from "../errors.js";
import { type LlmClient, upstreamError } from "./llm-client.js";
import type { CallContext, Metering } from "./metering.js";
import type { ModelGate } from "./model-gate.js";

export interface MeteredDeps {
  llm: LlmClient;
  metering: Metering;
  /** Who may use which model, and per-model quotas. */
  gate: ModelGate;
}

/** What a metered call reserves and charges, and which model it must be allowed. */
interface Cost {
  tokens: number;
  concurrent: boolean;
  /** Tokens charged when llm-server refuses the call (4xx): it did read the input. */
  refusedCost: number;
  charge: (json: unknown) => Charge;
  /** The `model` the call names, checked by the gate (absent: a call of no model). */
  model?: { sent: unknown };
}

/** What a metered call charges once llm-server answered 2xx. */
interface Charge {
  model: string | null;
  promptTokens: number;
}

/** The fields of an analyze request that change its cost. */
export interface AnalyzeBody {
  text: string;
  labels?: string[] | undefined;
  template?: string | undefined;
}

/** The largest prompt an analyze request may make llm-server tokenize (template with text). */
export const MAX_ANALYZE_PROMPT_BYTES = 128 * 1024;

/** One pass over an analyze request's text and template, at about 3 bytes a token. */
function analyzePassTokens(body: AnalyzeBody): number {
  const bytes = Buffer.byteLength(body.text) + Buffer.byteLength(body.template ?? "");
  return Math.ceil(bytes / 3) + 8;
}

/**
 * Tokens an analyze request may cost before llm-server tells: the text (and template) at
 * about 3 bytes a token, once for the scoring and once more for each label (every label
 * is a forward pass over the prompt).
 */
export function estimateAnalyzeTokens(body: AnalyzeBody): number {
  return analyzePassTokens(body) * (1 + (body.labels?.length ?? 0));
}

/**
 * Refuses, before anything is reserved or sent, an analyze request whose prompt would be
 * larger than llm-server should tokenize: a template may hold `{text}` once (each one is
 * another copy of the text), and the prompt with the text in place is bounded.
 */
export function checkAnalyzeBody(body: AnalyzeBody): void {
  const template = body.template;
  const copies = template === undefined ? 1 : template.split("{text}").length - 1;
  if (copies > 1) {
    throw new HttpError(400, "INVALID_TEMPLATE", "template may contain {text} only once");
  }
  const bytes =
    Buffer.byteLength(body.text) * Math.max(copies, 1) +
    Buffer.byteLength(template ?? "") +
    Math.max(0, ...(body.labels ?? []).map((l) => Buffer.byteLength(l)));
  if (bytes > MAX_ANALYZE_PROMPT_BYTES) {
    throw new HttpError(
      400,
      "PROMPT_TOO_LARGE",
      `The text with its template is ${bytes} bytes; at most ${MAX_ANALYZE_PROMPT_BYTES} are analyzed`,
    );
  }
}

/**
 * The LLM calls that are not completions (model lists, /analyze): each passes the
 * requests-per-minute limit (analyze also reserves and settles tokens and takes a
 * concurrency slot) and writes one usage row, like completions do.
 */
export class MeteredCalls {
  constructor(private readonly d: MeteredDeps) {}

  /** llm-server's `/v1/models` answer as received (status and body text). */
  async models(ctx: CallContext): Promise<{ status: number; text: string }> {
    return this.run(
      ctx,
      { method: "GET", path: "/v1/models" },
      {
        tokens: 0,
        concurrent: false,
        refusedCost: 0,
        charge: () => ({ model: null, promptTokens: 0 }),
      },
    );
  }

  /**
   * llm-server's `/analyze` answer. Charges the text's `token_count` llm-server reports,
   * once more per label (it reports nothing else); 4xx/5xx become errors.
   */
  async analyze<T>(ctx: CallContext, body: AnalyzeBody): Promise<T> {
    checkAnalyzeBody(body);
    const passes = 1 + (body.labels?.length ?? 0);
    const { status, text } = await this.run(
      ctx,
      { method: "POST", path: "/analyze", body },
      {
        tokens: estimateAnalyzeTokens(body),
        concurrent: true,
        // A refused analyze still had llm-server read (and maybe tokenize) the text once.
        refusedCost: analyzePassTokens(body),
        charge: (json) => {
          const a = json as { model?: unknown; token_count?: unknown };
          const count = typeof a.token_count === "number" ? a.token_count : 0;
          return {
            model: typeof a.model === "string" ? a.model : null,
            promptTokens: count * passes,
          };
        },
        // The model it names (none: the default one) must be one the caller may use.
        model: { sent: (body as { model?: unknown }).model },
      },
    );
    if (status >= 400) throw upstreamError(status, text);
    return JSON.parse(text) as T;
  }

  private async run(
    ctx: CallContext,
    call: { method: "GET" | "POST"; path: string; body?: unknown },
    cost: Cost,
  ): Promise<{ status: number; text: string }> {
    const { tokens, concurrent, refusedCost, charge } = cost;
    const meter = this.d.metering.open(ctx);
    const { row } = meter;
    try {
      const also = cost.model ? await this.d.gate.check(ctx, cost.model.sent) : [];
      await meter.admit({ tokens, minTokens: tokens, concurrent, also });
      const up = await this.d.llm.send(
        { ...call, clientId: ctx.userId, requestId: ctx.requestId, signal: ctx.signal },
        (res) => res.text(),
      );
      up.release(up.res.status >= 500);
      row.server = up.server;
      meter.firstToken();
      const { status, ok } = up.res;
      if (status >= 500) throw upstreamError(status, up.head);
      if (ok) {
        const c = charge(JSON.parse(up.head));
        row.model = c.model;
        row.promptTokens = c.promptTokens;
        row.quotaTokens = c.promptTokens;
      } else {
        // A refused call is no free probe: it costs what llm-server had to read.
        row.quotaTokens = refusedCost;
      }
      await meter.settle(row.quotaTokens);
      meter.finish(status, ok ? "ok" : "error", ok ? null : "UPSTREAM_REJECTED");
      return { status, text: up.head };
    } catch (err) {
      await meter.fail(err);
      throw err;
    }
  }
}
