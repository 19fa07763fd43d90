"use client";

import { useCallback, useEffect, useRef, useState } from "react";
import { errorText } from "./section-status";

export interface Resource<T> {
  /** The last document loaded; null until the first load succeeds. */
  data: T | null;
  /** Why the last load failed; null after a success. */
  error: string | null;
  /** Loads again (after a change); the previous data stays shown meanwhile. */
  reload: () => Promise<void>;
  /** Replaces the data shown (an optimistic change). */
  setData: (update: (data: T | null) => T | null) => void;
}

/**
 * A document an admin or account section shows: loaded on mount and whenever `load` changes
 * (a stable function, e.g. from `useCallback`), again on `reload()`, and every `refreshMs`
 * while the page is visible. A new load aborts the one before (its answer is dropped), and
 * so does unmounting. `onError` may take an error over (return true) instead of showing its
 * message.
 */
export function useResource<T>(
  load: (signal: AbortSignal) => Promise<T>,
  options: { refreshMs?: number; onError?: (err: unknown) => boolean } = {},
): Resource<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const current = useRef<AbortController | null>(null);
  const { refreshMs, onError } = options;
  const reload = useCallback(async () => {
    current.current?.abort();
    const controller = new AbortController();
    current.current = controller;
    try {
      const loaded = await load(controller.signal);
      if (controller.signal.aborted) return;
      setData(loaded);
      setError(null);
    } catch (err) {
      if (!controller.signal.aborted && !onError?.(err)) setError(errorText(err));
    }
  }, [load, onError]);
  useEffect(() => {
    void reload();
    const t = refreshMs
      ? setInterval(() => {
          if (document.visibilityState === "visible") void reload();
        }, refreshMs)
      : undefined;
    return () => {
      clearInterval(t);
      current.current?.abort();
    };
  }, [reload, refreshMs]);
  return { data, error, reload, setData };
}
