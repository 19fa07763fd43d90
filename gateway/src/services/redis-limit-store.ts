import type { Redis } from "ioredis";
import { limitsUnavailable } from "../errors.js";
import {
  type AcquireRequest,
  type AcquireResult,
  type Counters,
  DAY_MS,
  dayKey,
  dayStart,
  type LimitName,
  type LimitStore,
  MINUTE_MS,
  minuteStart,
  type SettleRequest,
  UNBOUNDED,
} from "./limit-store.js";

/**
 * KEYS: per subject rpm, concurrency and tokens keys. ARGV: subject count, tokens wanted,
 * min tokens, take-a-slot flag, then per subject its three limits. All checks pass and
 * every counter moves, or nothing changes (Redis runs a script atomically).
 */
const ACQUIRE = `
local n = tonumber(ARGV[1])
local want = tonumber(ARGV[2])
local minT = tonumber(ARGV[3])
local conc = tonumber(ARGV[4])
local reserve = want
for i = 1, n do
  local b = 4 + (i - 1) * 3
  local rpmL, concL, tokL = tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
  local k = (i - 1) * 3
  if rpmL > 0 and tonumber(redis.call('GET', KEYS[k + 1]) or '0') >= rpmL then return {0, i, 1} end
  if conc == 1 and concL > 0 and tonumber(redis.call('GET', KEYS[k + 2]) or '0') >= concL then return {0, i, 2} end
  if want > 0 and tokL > 0 then
    local left = tokL - tonumber(redis.call('GET', KEYS[k + 3]) or '0')
    if left <= 0 or left < minT then return {0, i, 3} end
    if left < reserve then reserve = left end
  end
end
for i = 1, n do
  local k = (i - 1) * 3
  redis.call('INCR', KEYS[k + 1])
  redis.call('PEXPIRE', KEYS[k + 1], 120000)
  if conc == 1 then
    redis.call('INCR', KEYS[k + 2])
    redis.call('PEXPIRE', KEYS[k + 2], 3600000)
  end
  if reserve > 0 and reserve < 1e15 then
    redis.call('INCRBY', KEYS[k + 3], reserve)
    redis.call('PEXPIRE', KEYS[k + 3], 172800000)
  end
end
return {1, tostring(reserve)}
`;

const SETTLE = `
local n = tonumber(ARGV[1])
local delta = tonumber(ARGV[2])
local conc = tonumber(ARGV[3])
for i = 1, n do
  local k = (i - 1) * 2
  if conc == 1 and tonumber(redis.call('GET', KEYS[k + 1]) or '0') > 0 then redis.call('DECR', KEYS[k + 1]) end
  if delta ~= 0 then
    local v = redis.call('INCRBY', KEYS[k + 2], delta)
    if v < 0 then redis.call('SET', KEYS[k + 2], 0) end
    redis.call('PEXPIRE', KEYS[k + 2], 172800000)
  end
end
return 1
`;

const NAMES: LimitName[] = ["requests_per_minute", "concurrent_streams", "tokens_per_day"];

/** Counters in Redis, shared by every gateway instance that points at the same REDIS_URL. */
export class RedisLimitStore implements LimitStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix = "gw:limit:",
  ) {}

  private keys(subject: string, now: number, day = dayKey(now)) {
    return {
      rpm: `${this.prefix}rpm:${subject}:${minuteStart(now)}`,
      conc: `${this.prefix}conc:${subject}`,
      tok: `${this.prefix}tok:${subject}:${day}`,
    };
  }

  async acquire(r: AcquireRequest): Promise<AcquireResult> {
    const keys = r.subjects.flatMap((s) => {
      const k = this.keys(s.id, r.now);
      return [k.rpm, k.conc, k.tok];
    });
    const args = [
      r.subjects.length,
      Math.min(r.tokens, UNBOUNDED),
      r.minTokens,
      r.concurrent ? 1 : 0,
      ...r.subjects.flatMap((s) => [
        s.limits.requestsPerMinute,
        s.limits.concurrentStreams,
        s.limits.tokensPerDay,
      ]),
    ].map(String);
    const res = (await this.redis
      .eval(ACQUIRE, keys.length, ...keys, ...args)
      .catch((err: unknown) => {
        throw limitsUnavailable(err);
      })) as [number, number | string, number?];
    if (res[0] === 1) return { ok: true, reserved: Number(res[1]), day: dayKey(r.now) };
    const subject = r.subjects[Number(res[1]) - 1];
    const limit = NAMES[(res[2] ?? 1) - 1] ?? "requests_per_minute";
    const value =
      limit === "requests_per_minute"
        ? (subject?.limits.requestsPerMinute ?? 0)
        : limit === "concurrent_streams"
          ? (subject?.limits.concurrentStreams ?? 0)
          : (subject?.limits.tokensPerDay ?? 0);
    const resetAt =
      limit === "requests_per_minute"
        ? minuteStart(r.now) + MINUTE_MS
        : limit === "tokens_per_day"
          ? dayStart(r.now) + DAY_MS
          : r.now + 1000;
    return { ok: false, limit, subject: subject?.id ?? "", value, resetAt };
  }

  async settle(r: SettleRequest): Promise<void> {
    const keys = r.subjects.flatMap((s) => {
      const k = this.keys(s.id, Date.now(), r.day);
      return [k.conc, k.tok];
    });
    const delta = r.reserved >= UNBOUNDED ? r.used : r.used - r.reserved;
    await this.redis.eval(
      SETTLE,
      keys.length,
      ...keys,
      String(r.subjects.length),
      String(delta),
      r.concurrent ? "1" : "0",
    );
  }

  async counters(subject: string, now: number): Promise<Counters> {
    const k = this.keys(subject, now);
    const [rpm, conc, tok] = await this.redis.mget(k.rpm, k.conc, k.tok).catch((err: unknown) => {
      throw limitsUnavailable(err);
    });
    return {
      requestsThisMinute: Number(rpm ?? 0),
      concurrent: Number(conc ?? 0),
      tokensToday: Number(tok ?? 0),
    };
  }
}
