"use client";

import { type ReactNode, useEffect, useState } from "react";
import { ApiError } from "@/lib/api";
import { errorText } from "./section-status";

/** Loads a document from a route a later gateway issue adds: a 404 shows "not available yet". */
export function OptionalSection<T>({
  title,
  id,
  load,
  render,
}: {
  title: string;
  id: string;
  load: () => Promise<T>;
  render: (doc: T) => ReactNode;
}) {
  const [state, setState] = useState<
    | { kind: "loading" }
    | { kind: "missing" }
    | { kind: "error"; message: string }
    | { kind: "ok"; doc: T }
  >({ kind: "loading" });
  useEffect(() => {
    load().then(
      (doc) => setState({ kind: "ok", doc }),
      (e: unknown) =>
        setState(
          e instanceof ApiError && e.status === 404
            ? { kind: "missing" }
            : { kind: "error", message: errorText(e) },
        ),
    );
  }, [load]);
  return (
    <section className="panel" aria-labelledby={id} data-testid={id}>
      <h2 id={id}>{title}</h2>
      {state.kind === "loading" ? <p className="muted">Loading…</p> : null}
      {state.kind === "missing" ? (
        <p className="muted">Not available yet: the gateway does not provide this yet.</p>
      ) : null}
      {state.kind === "error" ? (
        <p role="alert" className="alert alert-error">
          {state.message}
        </p>
      ) : null}
      {state.kind === "ok" ? render(state.doc) : null}
    </section>
  );
}
