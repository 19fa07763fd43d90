"use client";

import { api } from "@/lib/api";
import { fmtInt } from "@/lib/charts";
import type { ServerState, ServersStatus } from "@/lib/types";
import { Facts } from "../usage-chart";
import { useResource } from "../use-resource";

const STATE_TEXT: Record<ServerState, string> = {
  healthy: "healthy",
  unhealthy: "unhealthy",
  ejected: "ejected",
  unknown: "not checked yet",
};

/** GET /api/admin/servers: every llm-server's health and load, and the gateway queue (refreshed every 5 s). */
export function ServersSection() {
  const { data: doc, error, reload } = useResource(api.adminServers, { refreshMs: 5000 });

  return (
    <section className="panel" aria-labelledby="admin-servers-h" data-testid="admin-servers-h">
      <h2 id="admin-servers-h">LLM servers</h2>
      <div className="toolbar">
        <button type="button" className="btn" onClick={() => void reload()}>
          Refresh servers
        </button>
      </div>
      {error ? (
        <p role="alert" className="alert alert-error">
          {error}
        </p>
      ) : null}
      {!doc ? error ? null : <p className="muted">Loading…</p> : <ServersView doc={doc} />}
    </section>
  );
}

/** The llm-servers' table and the gateway queue. */
function ServersView({ doc }: { doc: ServersStatus }) {
  return (
    <>
      {/* A wide table scrolls sideways: keyboard users must be able to focus and scroll it. */}
      {/* biome-ignore lint/a11y/noNoninteractiveTabindex: scrollable region (WCAG 2.1.1) */}
      <section className="table-wrap" aria-label="LLM servers" tabIndex={0}>
        <table>
          <caption className="visually-hidden">LLM servers</caption>
          <thead>
            <tr>
              <th scope="col">Server</th>
              <th scope="col">State</th>
              <th scope="col">In flight / capacity</th>
              <th scope="col">Running / max</th>
              <th scope="col">Queued</th>
              <th scope="col">Requests</th>
              <th scope="col">Failures</th>
              <th scope="col">Last check</th>
              <th scope="col">Last error</th>
            </tr>
          </thead>
          <tbody>
            {doc.servers.map((s) => (
              <tr key={s.url} data-testid="llm-server">
                <th scope="row">{s.url}</th>
                <td>
                  <span
                    className={s.state === "healthy" ? "badge badge-ok" : "badge badge-bad"}
                    data-testid="server-state"
                  >
                    <span className="dot" aria-hidden="true" />
                    {STATE_TEXT[s.state]}
                  </span>
                </td>
                <td>
                  {fmtInt(s.outstanding)} / {fmtInt(s.capacity)}
                </td>
                <td>
                  {s.running === null ? "—" : fmtInt(s.running)} /{" "}
                  {s.maxRunning === null ? "—" : fmtInt(s.maxRunning)}
                </td>
                <td>{s.queued === null ? "—" : fmtInt(s.queued)}</td>
                <td>{fmtInt(s.requests)}</td>
                <td>
                  {fmtInt(s.failures)}
                  {s.consecutiveFailures > 0 ? ` (${s.consecutiveFailures} in a row)` : ""}
                </td>
                <td>{s.lastCheckAt ? new Date(s.lastCheckAt).toLocaleTimeString() : "—"}</td>
                <td>{s.lastError ?? "—"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      <Facts
        label="Gateway queue"
        items={[
          [
            "Waiting in the gateway queue",
            `${fmtInt(doc.queue.waiting)} / ${fmtInt(doc.queue.max)}`,
          ],
          ["Queue timeout", `${(doc.queue.timeoutMs / 1000).toLocaleString("en-US")} s`],
        ]}
      />
    </>
  );
}
