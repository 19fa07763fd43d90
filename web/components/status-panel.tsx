import type { StackStatus } from "@/lib/status";

function Indicator({ ok, label }: { ok: boolean; label: string }) {
  return (
    <span className={ok ? "badge badge-ok" : "badge badge-bad"}>
      <span className="dot" aria-hidden="true" />
      {label}
    </span>
  );
}

export function StatusPanel({ status }: { status: StackStatus }) {
  const gatewayOk = status.gateway === "reachable";
  const modelOk = status.model === "ready";
  return (
    <section className="panel" aria-labelledby="status-heading" data-testid="status-panel">
      <h2 id="status-heading">Status</h2>
      <dl className="status-list">
        <div className="status-row">
          <dt>Gateway</dt>
          <dd data-testid="gateway-status">
            <Indicator ok={gatewayOk} label={gatewayOk ? "reachable" : "unreachable"} />
          </dd>
        </div>
        <div className="status-row">
          <dt>Model server</dt>
          <dd data-testid="model-status">
            <Indicator ok={modelOk} label={modelOk ? "ready" : "not ready"} />
          </dd>
        </div>
      </dl>
      <p className="detail">
        Checked just now via the gateway&apos;s readiness probe ({status.detail}).
      </p>
    </section>
  );
}
