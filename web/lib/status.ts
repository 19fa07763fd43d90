/** Stack status as seen from the web server, via the gateway's readiness probe. */

export type GatewayState = "reachable" | "unreachable";
export type ModelState = "ready" | "not-ready";

export interface StackStatus {
  gateway: GatewayState;
  model: ModelState;
  /** Short human-readable explanation, e.g. "HTTP 503" or the network error. */
  detail: string;
}

interface ReadyBody {
  status?: unknown;
  llmServers?: unknown;
}

function isReadyBody(value: unknown): value is ReadyBody {
  return typeof value === "object" && value !== null;
}

function modelReady(body: unknown): boolean {
  if (!isReadyBody(body)) return false;
  if (body.status !== "ready") return false;
  if (!Array.isArray(body.llmServers)) return true;
  return body.llmServers.some(
    (s: unknown) =>
      typeof s === "object" && s !== null && (s as { ready?: unknown }).ready === true,
  );
}

/**
 * Ask `${gatewayUrl}/health/ready`. Never throws: an unreachable gateway or a
 * timeout is reported as `gateway: "unreachable"`.
 */
export async function fetchStackStatus(
  gatewayUrl: string,
  options: { fetch?: typeof fetch; timeoutMs?: number } = {},
): Promise<StackStatus> {
  const doFetch = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? 3000;

  let res: Response;
  try {
    res = await doFetch(`${gatewayUrl}/health/ready`, {
      cache: "no-store",
      headers: { accept: "application/json" },
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    const reason =
      err instanceof Error
        ? err.name === "TimeoutError"
          ? `timed out after ${timeoutMs} ms`
          : err.message
        : String(err);
    return { gateway: "unreachable", model: "not-ready", detail: reason };
  }

  let body: unknown = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  const ready = (res.status === 200 || res.status === 503) && modelReady(body);
  return {
    gateway: "reachable",
    model: ready ? "ready" : "not-ready",
    detail: `HTTP ${res.status}`,
  };
}
