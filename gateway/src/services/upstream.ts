import type { Dispatcher } from "undici";
import { REDACTED, type Secret } from "../config/redacted.js";
import type { UpstreamKind } from "../config/routing-file.js";

export type { UpstreamKind };

/**
 * One server of a pool as the balancer and the client see it: where it is, what kind it is,
 * the name it knows the model by, its weight and its own timeout and credentials.
 */
export interface UpstreamTarget {
  kind: UpstreamKind;
  /** Base URL without trailing slash and without credentials (an OpenAI one ends in `/v1`). */
  url: string;
  /** The model's name upstream; undefined: the client's `model` goes as sent (no routing file). */
  model: string | undefined;
  /** Relative capacity within its pool (1 = as much as any other). */
  weight: number;
  /** An OpenAI upstream's API key (llm-servers use LLM_SERVER_TOKEN). */
  apiKey: Secret | undefined;
  /** Time to the first token for this upstream; undefined: LLM_FIRST_TOKEN_TIMEOUT_MS. */
  firstTokenTimeoutMs: number | undefined;
  /** The connection pool to reach it with (TLS settings differ per kind); undefined: the client's. */
  dispatcher?: Dispatcher | undefined;
}

/** A target for one of LLM_SERVER_URLS (no routing file): today's llm-server, model as sent. */
export function llmServerTarget(url: string): UpstreamTarget {
  return {
    kind: "llm-server",
    url: url.replace(/\/+$/, ""),
    model: undefined,
    weight: 1,
    apiKey: undefined,
    firstTokenTimeoutMs: undefined,
  };
}

/**
 * The path of a gateway call on `target`: llm-server serves `/v1/...` under its root, while
 * an OpenAI base URL already ends in `/v1` (`https://host/v1` + `/chat/completions`).
 */
export function upstreamPath(target: UpstreamTarget, path: string): string {
  return target.kind === "openai" ? path.replace(/^\/v1(?=\/)/, "") : path;
}

/** Where the balancer probes `target`: llm-server's readiness, an OpenAI server's model list. */
export function healthPath(target: UpstreamTarget): string {
  return target.kind === "openai" ? "/models" : "/health/ready";
}

/** The Authorization header value for `target` (llm-server: the service token), or undefined. */
export function authorization(target: UpstreamTarget, llmServerToken: string): string | undefined {
  if (target.kind === "llm-server") return `Bearer ${llmServerToken}`;
  return target.apiKey ? `Bearer ${target.apiKey.reveal()}` : undefined;
}

/**
 * Statuses an OpenAI upstream answers for its own reasons, not the client's: a refused key
 * (401/403), an unknown model or path there (404: the routing file is wrong), its own rate
 * limit or timeout (429/408). Another upstream may answer; none is the client's to see.
 */
export const UPSTREAM_FAULT = new Set([401, 403, 404, 407, 408, 429]);

/** `text` with every occurrence of `target`'s key replaced (an upstream may echo it in an error). */
export function scrub(target: UpstreamTarget | undefined, text: string): string {
  const key = target?.apiKey?.reveal();
  return key ? text.split(key).join(REDACTED) : text;
}
