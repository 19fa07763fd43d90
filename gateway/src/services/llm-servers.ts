import { type Dispatcher, fetch, getGlobalDispatcher } from "undici";

export interface LlmServerStatus {
  url: string;
  ready: boolean;
}

export interface LlmServersOptions {
  /** Base URLs of the llm-server instances. */
  urls: readonly string[];
  /** Per-probe timeout in milliseconds (default 1000). */
  timeoutMs?: number;
  /** The connection pool (TLS settings of https:// servers); undici's global one when unset. */
  dispatcher?: Dispatcher;
}

/** Knows the configured llm-server instances and probes their readiness. */
export class LlmServers {
  readonly urls: readonly string[];
  private readonly timeoutMs: number;
  private readonly dispatcher: Dispatcher;

  constructor(options: LlmServersOptions) {
    this.urls = options.urls.map((u) => u.replace(/\/+$/, ""));
    this.timeoutMs = options.timeoutMs ?? 1000;
    this.dispatcher = options.dispatcher ?? getGlobalDispatcher();
  }

  /** Probes every server's `/health/ready` in parallel; never throws. */
  async probeAll(): Promise<LlmServerStatus[]> {
    return Promise.all(this.urls.map(async (url) => ({ url, ready: await this.isReady(url) })));
  }

  /** True when `GET {url}/health/ready` answers 200 within the timeout. */
  async isReady(url: string): Promise<boolean> {
    try {
      const res = await fetch(`${url}/health/ready`, {
        signal: AbortSignal.timeout(this.timeoutMs),
        dispatcher: this.dispatcher,
      });
      // Drain the body so the connection can be reused or closed.
      await res.arrayBuffer().catch(() => undefined);
      return res.status === 200;
    } catch {
      return false;
    }
  }
}
