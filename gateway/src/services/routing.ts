import type { ModelSpec } from "../config/routing-file.js";
import type { Balancer } from "./balancer.js";
import type { LlmCall, LlmClient, Upstream, UpstreamResponse } from "./llm-client.js";

/** One public model's pool of upstreams: its balancer and the client that uses it. */
export interface Pool {
  /** The public name; null without a routing file (the client's `model` goes as sent). */
  name: string | null;
  spec: ModelSpec | undefined;
  balancer: Balancer;
  llm: LlmClient;
}

/** Where one request goes: the model asked for, then its fallbacks (pools tried in order). */
export interface Route {
  /** The public model asked for (canonical name); null without a routing file. */
  name: string | null;
  chain: Pool[];
}

/** Reads the start of an answer (see Prepare), with the client of the pool it came from. */
export type RoutedPrepare<T> = (res: UpstreamResponse, llm: LlmClient) => Promise<T>;

/** An upstream answer, with the public model that gave it (after a fallback, another one). */
export type Routed<T> = Upstream<T> & { model: string | null };

/** What the completion pipeline needs of the model router (models/router.ts). */
export interface ModelRoutes {
  /** The route of a request's `model`; throws 404 for an unknown one. */
  resolve(model: unknown): Route;
  /** Sends `call` through the route's pools, falling back when one is down. */
  send<T>(route: Route, call: LlmCall, prepare: RoutedPrepare<T>): Promise<Routed<T>>;
}
