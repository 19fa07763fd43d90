import { HttpError } from "../errors.js";
import type { UpstreamTarget } from "./upstream.js";

export type CompletionPath = "/v1/chat/completions" | "/v1/completions";

const TOKEN_FIELDS = ["max_tokens", "max_completion_tokens"] as const;

/**
 * A completion request's body, its prompt part (`messages`, or `prompt`) serialised once: the
 * prompt estimate measures that text and the upstream body reuses it.
 */
export class CompletionBody {
  private readonly promptKey: "messages" | "prompt" | null;
  private prompt: string | undefined;

  constructor(
    readonly path: CompletionPath,
    readonly fields: Record<string, unknown>,
  ) {
    const { messages, prompt } = fields;
    this.promptKey = messages != null ? "messages" : prompt != null ? "prompt" : null;
  }

  /** The prompt part as JSON (`""` as JSON when there is none), serialised on first use. */
  get promptJson(): string {
    this.prompt ??= JSON.stringify(this.fields.messages ?? this.fields.prompt ?? "");
    return this.prompt;
  }

  get stream(): boolean {
    return this.fields.stream === true;
  }

  /** Whether the client asked for the usage chunk (`stream_options.include_usage`). */
  get wantsUsage(): boolean {
    const options = this.fields.stream_options as { include_usage?: unknown } | undefined | null;
    return options?.include_usage === true;
  }

  /** A generous estimate of the prompt's tokens (about 3 bytes a token, plus framing). */
  promptTokens(): number {
    const messages = Array.isArray(this.fields.messages) ? this.fields.messages.length : 0;
    return Math.ceil(Buffer.byteLength(this.promptJson) / 3) + 4 * messages + 8;
  }

  /**
   * The fields with every token-limit field llm-server reads set to `limit` (chat: both
   * `max_tokens` and `max_completion_tokens`, so whichever it honours is the clamped one);
   * unchanged when `limit` is undefined.
   */
  withMaxTokens(limit: number | undefined): Record<string, unknown> {
    if (limit === undefined) return { ...this.fields };
    if (this.path === "/v1/completions") return { ...this.fields, max_tokens: limit };
    return { ...this.fields, max_tokens: limit, max_completion_tokens: limit };
  }

  /**
   * The JSON sent upstream: the fields with `limit` (see withMaxTokens) and, for a stream, the
   * usage chunk asked for; the prompt part is spliced in as serialised already.
   */
  upstreamJson(limit: number | undefined, target?: Pick<UpstreamTarget, "kind" | "model">): string {
    const fields = this.withMaxTokens(limit);
    // The routing file's name for the model upstream (none: the client's, as sent).
    if (target?.model !== undefined) fields.model = target.model;
    // Other servers need not know llm-server's twin token fields: only the one the client used.
    if (target?.kind === "openai" && this.path === "/v1/chat/completions" && limit !== undefined) {
      delete fields[
        this.fields.max_completion_tokens != null ? "max_tokens" : "max_completion_tokens"
      ];
    }
    if (this.stream) {
      fields.stream_options = { ...(this.fields.stream_options as object), include_usage: true };
    }
    if (this.promptKey === null) return JSON.stringify(fields);
    delete fields[this.promptKey];
    const rest = JSON.stringify(fields);
    const head = `{${JSON.stringify(this.promptKey)}:${this.promptJson}`;
    return rest === "{}" ? `${head}}` : `${head},${rest.slice(1)}`;
  }

  /**
   * What the request may generate: tokens per choice (undefined: no cap and none asked) and
   * the number of choices. llm-server honours `max_completion_tokens` over `max_tokens`
   * (chat), so the larger of the two is what is checked against the caller's per-request
   * cap, which covers every choice together; the caller's own value is kept, or the cap
   * shared by the choices when none was sent. The route schemas already refused wrong types
   * and ranges (`n` an integer from 1 to 16, token fields integers >= 1 or null).
   */
  tokenRequest(cap: number): { maxTokens: number | undefined; choices: number } {
    return tokenRequest(this.path, this.fields, cap);
  }
}

/** A generous estimate of a request's prompt tokens (about 3 bytes a token, plus framing). */
export function estimatePromptTokens(body: Record<string, unknown>): number {
  return new CompletionBody("/v1/chat/completions", body).promptTokens();
}

/** See CompletionBody.tokenRequest. */
export function tokenRequest(
  path: CompletionPath,
  body: Record<string, unknown>,
  cap: number,
): { maxTokens: number | undefined; choices: number } {
  const choices = (body.n as number | undefined) ?? 1;
  const fields = path === "/v1/chat/completions" ? TOKEN_FIELDS : TOKEN_FIELDS.slice(0, 1);
  const asked = fields
    .map((f) => body[f] as number | null | undefined)
    .filter((v): v is number => v !== undefined && v !== null);
  const requested = asked.length > 0 ? Math.max(...asked) : undefined;
  if (cap > 0 && requested !== undefined && requested * choices > cap) {
    const what =
      choices > 1
        ? `${requested} tokens for each of ${choices} choices`
        : `max_tokens ${requested}`;
    throw new HttpError(
      400,
      "MAX_TOKENS_EXCEEDED",
      `${what} is over your limit of ${cap} tokens per request`,
    );
  }
  if (requested !== undefined || cap === 0) return { maxTokens: requested, choices };
  const share = Math.floor(cap / choices);
  if (share < 1) {
    throw new HttpError(
      400,
      "MAX_TOKENS_EXCEEDED",
      `n ${choices} is over your limit of ${cap} tokens per request (at least 1 token per choice)`,
    );
  }
  return { maxTokens: share, choices };
}
