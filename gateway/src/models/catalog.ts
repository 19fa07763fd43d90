import type { Balancer } from "../services/balancer.js";
import type { PrefixCacheReport } from "../services/prefix-cache.js";
import type { UpstreamKind } from "../services/upstream.js";
import type { ModelRouter, Pool } from "./router.js";

/** A model's state in the lists: ready, loading or unloaded upstream, or no upstream usable. */
export type ModelState = "ready" | "loading" | "unloaded" | "down";
export type UpstreamState = "up" | "down" | "ejected";

/** One model as the lists show it (`/v1/models`, `/api/models`, `/api/admin/models`). */
export interface CatalogModel {
  id: string;
  aliases: string[];
  kind?: "base" | "chat";
  state: ModelState;
  default: boolean;
  fallbacks: string[];
  upstreams: {
    kind: UpstreamKind;
    url: string;
    model: string;
    weight: number;
    state: UpstreamState;
    /** The model's prefix caches as the llm-server last reported them (none: not loaded, an
     * older llm-server, an OpenAI upstream). */
    prefix_cache?: PrefixCacheReport;
  }[];
}

type ServerView = ReturnType<Balancer["snapshot"]>["servers"][number];

/** llm-server's model states (`/health/ready` and `/v1/models`) in the gateway's words. */
const REPORTED: Record<string, ModelState> = {
  loaded: "ready",
  ready: "ready",
  loading: "loading",
  unloaded: "unloaded",
  failed: "down",
};

/** An llm-server's (or list entry's) reported state as a ModelState; unknown: ready. */
export function reportedState(state: unknown): ModelState {
  return (typeof state === "string" ? REPORTED[state] : undefined) ?? "ready";
}

function upstreamState(s: ServerView): UpstreamState {
  if (s.state === "ejected") return "ejected";
  return s.state === "healthy" ? "up" : "down";
}

/** The state of `model` on one upstream that is up (an OpenAI server lists no states). */
function stateOn(s: ServerView, model: string): ModelState {
  if (s.kind === "openai") return "ready";
  return reportedState(s.models.get(model));
}

/** A pool's model state: ready on any usable upstream, else loading, unloaded, or down. */
function poolState(servers: ServerView[], model: (s: ServerView) => string): ModelState {
  const states = servers.filter((s) => s.state === "healthy").map((s) => stateOn(s, model(s)));
  for (const wanted of ["ready", "loading", "unloaded"] as const) {
    if (states.includes(wanted)) return wanted;
  }
  return "down";
}

function upstreamsOf(servers: ServerView[], model: (s: ServerView) => string) {
  return servers.map((s) => {
    const cache = s.prefixCaches.get(model(s));
    return {
      kind: s.kind,
      url: s.url,
      model: model(s),
      weight: s.weight,
      state: upstreamState(s),
      ...(cache ? { prefix_cache: cache } : {}),
    };
  });
}

/** The models of a routing file, each with its pool's state. */
function routedModels(router: ModelRouter): CatalogModel[] {
  return router.pools.map((pool: Pool) => {
    const spec = pool.spec;
    const servers = pool.balancer.snapshot().servers;
    const model = (s: ServerView) => s.model ?? "";
    return {
      id: pool.name ?? "",
      aliases: spec?.aliases ?? [],
      ...(spec?.kind ? { kind: spec.kind } : {}),
      state: poolState(servers, model),
      default: pool.name === router.defaultModel,
      fallbacks: spec?.fallbacks ?? [],
      upstreams: upstreamsOf(servers, model),
    };
  });
}

/**
 * Without a routing file: the models the llm-servers report in their health checks, each on
 * every server of the one pool.
 */
function reportedModels(router: ModelRouter): CatalogModel[] {
  const servers = router.defaultPool.balancer.snapshot().servers;
  const ids = [...new Set(servers.flatMap((s) => [...s.models.keys()]))];
  return ids.map((id) => ({
    id,
    aliases: [],
    state: poolState(servers, () => id),
    default: false,
    fallbacks: [],
    upstreams: upstreamsOf(servers, () => id),
  }));
}

/** Every model with its state and upstreams, after the first round of health checks. */
export async function catalogModels(router: ModelRouter): Promise<CatalogModel[]> {
  await router.checked();
  return router.routing ? routedModels(router) : reportedModels(router);
}
