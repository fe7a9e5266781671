// QuotaCounter backed by Redis: one atomic Lua check-and-increment per charge, shared exactly by every instance (SPEC §2.3, §13).
import { Redis } from 'ioredis';
import { UnavailableError } from '../core/errors.js';
import { COUNTERS, type Counter } from '../core/tiers.js';
import { msUntilNextUtcMidnight, utcDay } from '../core/time.js';
import type { QuotaCounter, QuotaOutcome, QuotaRequest } from './quota-counter.js';

// KEYS[1] = counter key. ARGV = units, limit (-1: none), partial (1/0), ttl ms.
// Returns {granted, used after}. Runs atomically inside Redis, so concurrent callers never overshoot.
const CONSUME = `
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local units = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local granted = units
if limit >= 0 then
  local left = limit - used
  if left < 0 then left = 0 end
  if ARGV[3] == '1' then
    if units < left then granted = units else granted = left end
  elseif units > left then
    granted = 0
  end
end
if granted > 0 then
  used = redis.call('INCRBY', KEYS[1], granted)
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
return {granted, used}
`;

// KEYS[1] = counter key. ARGV[1] = units. Never goes below zero; DECRBY keeps the key's expiry.
const REFUND = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local used = redis.call('DECRBY', KEYS[1], ARGV[1])
if used < 0 then redis.call('INCRBY', KEYS[1], -used) used = 0 end
return used
`;

/** Keys outlive their day by this much so a request at 23:59:59.999 still reads its own count. */
const EXPIRY_GRACE_MS = 60 * 60_000;

interface ScriptedRedis extends Redis {
  vaktQuotaConsume(
    key: string,
    units: number,
    limit: number,
    partial: number,
    ttl: number,
  ): Promise<[number, number]>;
  vaktQuotaRefund(key: string, units: number): Promise<number>;
}

export interface RedisQuotaOptions {
  /** Prepended to every key (tests use a unique one per run). Default `vakt:quota:`. */
  readonly prefix?: string;
  /** Milliseconds a command may take before the request fails with 503. Default 2000. */
  readonly commandTimeoutMs?: number;
}

/**
 * Usage counters in Redis under `<prefix><keyId>:<counter>:<day>`, expiring after their UTC day.
 * Fails closed: when Redis is unreachable or slow every call throws UnavailableError (→ 503) at once
 * instead of queueing, and nothing is charged. Charges are not part of database transactions
 * (`transactional = false`): callers refund when their own work rolls back.
 */
export class RedisQuotaCounter implements QuotaCounter {
  readonly transactional = false;
  private readonly redis: ScriptedRedis;
  /** Prepended to every key this counter writes. */
  readonly prefix: string;

  constructor(url: string, options: RedisQuotaOptions = {}) {
    this.prefix = options.prefix ?? 'vakt:quota:';
    const redis = new Redis(url, {
      // Commands issued while disconnected fail immediately rather than waiting for a reconnect.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: options.commandTimeoutMs ?? 2000,
      connectTimeout: 2000,
      // Keep trying to reconnect forever, at most every half second.
      retryStrategy: (attempt) => Math.min(attempt * 50, 500),
    });
    // Connection errors surface through the commands; an unhandled 'error' event would crash the process.
    redis.on('error', () => {});
    redis.defineCommand('vaktQuotaConsume', { numberOfKeys: 1, lua: CONSUME });
    redis.defineCommand('vaktQuotaRefund', { numberOfKeys: 1, lua: REFUND });
    this.redis = redis as ScriptedRedis;
  }

  /** Resolves once connected, or after `timeoutMs` (the counter keeps reconnecting on its own). */
  async ready(timeoutMs = 3000): Promise<boolean> {
    if (this.redis.status === 'ready') return true;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.redis.off('ready', onReady);
        resolve(false);
      }, timeoutMs);
      const onReady = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.redis.once('ready', onReady);
    });
  }

  private key(keyId: string, counter: Counter, day: number): string {
    return `${this.prefix}${keyId}:${counter}:${day}`;
  }

  private async call<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw new UnavailableError('redis', { cause: error });
    }
  }

  async consume(request: QuotaRequest): Promise<QuotaOutcome> {
    const key = this.key(request.keyId, request.counter, utcDay(request.now));
    const ttl = msUntilNextUtcMidnight(request.now) + EXPIRY_GRACE_MS;
    const [granted, used] = await this.call(() =>
      this.redis.vaktQuotaConsume(key, request.units, request.limit ?? -1, request.partial ? 1 : 0, ttl),
    );
    return { granted: Number(granted), used: Number(used), limit: request.limit };
  }

  async refund(keyId: string, counter: Counter, units: number, now: number): Promise<void> {
    if (units <= 0) return;
    await this.call(() => this.redis.vaktQuotaRefund(this.key(keyId, counter, utcDay(now)), units));
  }

  async usage(keyId: string, now: number): Promise<Record<Counter, number>> {
    const day = utcDay(now);
    const values = await this.call(() => this.redis.mget(...COUNTERS.map((c) => this.key(keyId, c, day))));
    return Object.fromEntries(COUNTERS.map((c, i) => [c, Number(values[i] ?? 0)])) as Record<Counter, number>;
  }

  async close(): Promise<void> {
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }
}
