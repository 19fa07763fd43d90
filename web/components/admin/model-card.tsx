"use client";

import { useId } from "react";
import { fmtInt } from "@/lib/charts";
import type { AdminModel, AdminUpstream, ModelLimit, ModelRule, ModelState } from "@/lib/types";
import { Table } from "../table";
import { Facts } from "../usage-chart";
import { ModelAccessEditor } from "./model-access-editor";
import { PrefixCacheTable } from "./prefix-cache-table";

const MODEL_STATE: Record<ModelState, string> = {
  ready: "ready",
  loading: "loading",
  unloaded: "not loaded (loads on first use)",
  down: "down",
};
const UPSTREAM_STATE: Record<AdminUpstream["state"], string> = {
  up: "up",
  down: "down",
  ejected: "ejected",
};

/** A state as a badge: green when it can answer now, red when it cannot. */
function StateBadge({ text, ok, testId }: { text: string; ok: boolean; testId: string }) {
  return (
    <span className={ok ? "badge badge-ok" : "badge badge-bad"} data-testid={testId}>
      <span className="dot" aria-hidden="true" />
      {text}
    </span>
  );
}

/** One model: its state, names, today's usage, upstreams, and who may use it. */
export function ModelCard({
  model: m,
  rules,
  limits,
  onAccessChanged,
}: {
  model: AdminModel;
  rules: ModelRule[];
  limits: ModelLimit[];
  onAccessChanged: () => Promise<void>;
}) {
  const headingId = useId();
  return (
    <section className="panel stack" aria-labelledby={headingId} data-testid="admin-model">
      <h2 id={headingId} className="model-card-h">
        {m.id}{" "}
        <StateBadge text={MODEL_STATE[m.state]} ok={m.state !== "down"} testId="model-state" />
        {m.kind === "base" ? <span className="tag">base model: continues text</span> : null}
        {m.kind === "chat" ? <span className="tag">chat model</span> : null}
        {m.default ? <span className="tag">default</span> : null}
      </h2>
      <Facts
        label={`${m.id} today`}
        items={[
          ["Requests today", fmtInt(m.usage.requests_today)],
          ["Tokens today", fmtInt(m.usage.tokens_today)],
          ["Also called", m.aliases.length > 0 ? m.aliases.join(", ") : "—"],
          ["Falls back to", m.fallbacks.length > 0 ? m.fallbacks.join(", ") : "—"],
        ]}
      />
      <Table
        caption={`Upstreams of ${m.id}`}
        columns={["Kind", "URL", "Upstream model", "Weight", "State"]}
      >
        {m.upstreams.map((u) => (
          <tr key={`${u.url} ${u.model}`} data-testid="model-upstream">
            <td>{u.kind === "llm-server" ? "llm-server" : "OpenAI-compatible"}</td>
            <td>
              <code>{u.url}</code>
            </td>
            <td>{u.model}</td>
            <td>{u.weight}</td>
            <td>
              <StateBadge
                text={UPSTREAM_STATE[u.state]}
                ok={u.state === "up"}
                testId="upstream-state"
              />
            </td>
          </tr>
        ))}
      </Table>
      <PrefixCacheTable model={m.id} upstreams={m.upstreams} />
      <ModelAccessEditor model={m.id} rules={rules} limits={limits} onChanged={onAccessChanged} />
    </section>
  );
}
