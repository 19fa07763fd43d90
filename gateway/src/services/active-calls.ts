import type { IncomingHttpHeaders } from "node:http";
import { HttpError } from "../errors.js";
import type { Role } from "../schemas.js";
import type { Caller } from "./limits.js";

/** What the registry asks about a caller while their calls run. */
export interface CallerCheck {
  /**
   * Who these credentials belong to now; null when nobody (account disabled or deleted,
   * API key revoked, session ended).
   */
  resolve(headers: IncomingHttpHeaders): Promise<{ userId: string; role: Role } | null>;
  /** The caller's per-request token cap now (0: none). */
  maxTokens(caller: Caller): Promise<number>;
  /** Whether the caller (with their role now) may still use the model a call named. */
  modelAllowed(caller: { userId: string; role: Role }, model: string): Promise<boolean>;
}

/** A running LLM call as the registry sees it. */
export interface TrackedCall extends Caller {
  /** Tokens the call may still generate (null: no cap); set once it was admitted. */
  tokens?: number | null;
  /** The model the request named (`""`: none, the default), for calls of one model. */
  model?: string;
}

interface Entry {
  call: TrackedCall;
  /** Only the credentials, for checking them again. */
  credentials: IncomingHttpHeaders;
  controller: AbortController;
}

/** The in-band error of calls ended because their caller lost access. */
export function accessRevoked(detail: string): HttpError {
  return new HttpError(403, "ACCESS_REVOKED", `Access ended while the request ran: ${detail}`);
}

/** The in-band error of calls still running when the gateway's drain deadline passed. */
export function shuttingDown(): HttpError {
  return new HttpError(503, "SHUTTING_DOWN", "The gateway is shutting down; retry shortly");
}

/**
 * Every LLM call in flight (JSON answers and streams), so the gateway can end them: when
 * their caller loses access (disabled, deleted, API key revoked, signed out, denied the
 * call's model, or demoted below the tokens the call may still generate), checked every `intervalMs` and at once
 * after a change made through this process; and at shutdown, after a drain deadline.
 * Ending a call aborts its signal with an HttpError reason: the upstream request stops,
 * the usage delivered so far is recorded, and a stream ends with an in-band error event.
 */
export class ActiveCalls {
  private readonly entries = new Set<Entry>();
  private timer: NodeJS.Timeout | undefined;
  private soon: NodeJS.Timeout | undefined;
  private running: Promise<void> | null = null;
  private emptied: (() => void)[] = [];

  constructor(
    private readonly check: CallerCheck,
    private readonly intervalMs: number,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /**
   * Tracks a call until the returned function is called; `controller` is aborted (with
   * an HttpError) when the gateway ends the call.
   */
  track(call: TrackedCall, headers: IncomingHttpHeaders, controller: AbortController): () => void {
    const credentials: IncomingHttpHeaders = {};
    if (headers.authorization) credentials.authorization = headers.authorization;
    if (headers.cookie) credentials.cookie = headers.cookie;
    const entry: Entry = { call, credentials, controller };
    this.entries.add(entry);
    return () => {
      this.entries.delete(entry);
      if (this.entries.size === 0) for (const done of this.emptied.splice(0)) done();
    };
  }

  /** Starts the periodic checks (the timer does not keep the process alive). */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.recheck(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    clearTimeout(this.soon);
    this.timer = undefined;
    this.soon = undefined;
  }

  /**
   * Checks again shortly: after a change made through this process (the change's own
   * writes, such as ending sessions, finish first).
   */
  recheckSoon(): void {
    if (this.soon || this.entries.size === 0) return;
    this.soon = setTimeout(() => {
      this.soon = undefined;
      void this.recheck();
    }, 50);
    this.soon.unref();
  }

  /** Checks every tracked call's caller once (one lookup per distinct credentials). */
  recheck(): Promise<void> {
    this.running ??= this.checkAll().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async checkAll(): Promise<void> {
    const groups = new Map<string, Entry[]>();
    for (const e of this.entries) {
      if (e.controller.signal.aborted) continue;
      const key = `${e.credentials.authorization ?? ""}\n${e.credentials.cookie ?? ""}`;
      const group = groups.get(key);
      if (group) group.push(e);
      else groups.set(key, [e]);
    }
    await Promise.all(
      [...groups.values()].map(async (group) => {
        const first = group[0] as Entry;
        let now: Awaited<ReturnType<CallerCheck["resolve"]>>;
        try {
          now = await this.check.resolve(first.credentials);
        } catch {
          return; // the check itself failed (database busy): try again next time
        }
        for (const e of group) {
          const why = await this.refusal(e.call, now).catch(() => null);
          if (why) e.controller.abort(why);
        }
      }),
    );
  }

  /** Why a call may not go on under its caller's current access, or null. */
  private async refusal(
    call: TrackedCall,
    now: { userId: string; role: Role } | null,
  ): Promise<HttpError | null> {
    if (!now || now.userId !== call.userId) {
      return accessRevoked("the account was disabled or deleted, or the key or session ended");
    }
    if (call.model !== undefined && !(await this.check.modelAllowed(now, call.model))) {
      return accessRevoked(`the model "${call.model || "default"}" is no longer available to you`);
    }
    if (now.role === call.role) return null;
    const cap = await this.check.maxTokens({ ...call, role: now.role });
    const tokens = call.tokens;
    if (cap > 0 && (tokens === null || tokens === undefined || tokens > cap)) {
      return accessRevoked(`the role changed to ${now.role}, whose limit is ${cap} tokens`);
    }
    return null;
  }

  /**
   * Lets the calls in flight finish for up to `deadlineMs`, then ends the rest with the
   * SHUTTING_DOWN error, and waits (up to `graceMs`) until they have recorded their usage
   * and closed.
   */
  async drain(deadlineMs: number, graceMs = 2000): Promise<void> {
    this.stop();
    if (!(await this.whenEmpty(deadlineMs))) {
      const err = shuttingDown();
      for (const e of this.entries) e.controller.abort(err);
      await this.whenEmpty(graceMs);
    }
  }

  /** True once no call is tracked, false when `ms` passed first. */
  private whenEmpty(ms: number): Promise<boolean> {
    if (this.entries.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        const i = this.emptied.indexOf(done);
        if (i >= 0) this.emptied.splice(i, 1);
        resolve(false);
      }, ms);
      this.emptied.push(done);
    });
  }
}
