"use client";

import { useEffect, useState } from "react";
import { api } from "@/lib/api";
import type { ModelInfo } from "@/lib/types";
import { type Resource, useResource } from "../use-resource";

/** How often the list is asked again: its states change (a model loads, a server goes down). */
const REFRESH_MS = 30_000;
/** …and sooner while a model is loading, so "loading" turns to "ready" when it is. */
const LOADING_REFRESH_MS = 3_000;

const load = (signal: AbortSignal) => api.models(signal);

/**
 * The models this user may use (GET /api/models; the gateway lists only those), with their
 * state, kept current while the page is open.
 */
export function useModels(): Resource<ModelInfo[]> {
  const [loading, setLoading] = useState(false);
  const resource = useResource(load, { refreshMs: loading ? LOADING_REFRESH_MS : REFRESH_MS });
  const anyLoading = resource.data?.some((m) => m.state === "loading") ?? false;
  useEffect(() => setLoading(anyLoading), [anyLoading]);
  return resource;
}
