// Quota charging and headers (SPEC §2.3): X-Daily-*, the SikkerAPI per-family names, 429 with Retry-After.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../../core/errors.js';
import type { Counter } from '../../core/tiers.js';
import { DAY_MS, msUntilNextUtcMidnight, utcDay } from '../../core/time.js';
import type { QuotaOutcome } from '../../quota/quota-counter.js';
import type { Services } from '../../services/services.js';
import { keyOf } from './auth.js';

/** The X-RateLimit-Reset value (next UTC midnight, epoch seconds), kept for the day it was made for. */
let resetDay = Number.NaN;
let resetText = '';
function rateLimitReset(now: number): string {
  const day = utcDay(now);
  if (day !== resetDay) {
    resetText = String(((day + 1) * DAY_MS) / 1000);
    resetDay = day;
  }
  return resetText;
}

/**
 * Appends every quota header for `counter` to `list` as lower-case name, value, name, value … (SPEC §2.3).
 * Unlimited keys get X-Daily-Used only. One list for Fastify replies and the check fast lane (which hands
 * it to `writeHead` as it is), so both send the same.
 */
export function pushQuotaHeaders(
  list: (string | number)[],
  counter: Counter,
  outcome: QuotaOutcome,
  now: number,
): void {
  list.push('x-daily-used', String(outcome.used));
  if (outcome.limit === null) return;
  const remaining = String(Math.max(0, outcome.limit - outcome.used));
  const limit = String(outcome.limit);
  list.push('x-daily-limit', limit, 'x-daily-remaining', remaining);
  switch (counter) {
    case 'lookups':
    case 'blacklist':
      list.push(
        'x-ratelimit-limit',
        limit,
        'x-ratelimit-remaining',
        remaining,
        'x-ratelimit-reset',
        rateLimitReset(now),
      );
      break;
    case 'reports':
      list.push('x-report-limit', limit, 'x-report-remaining', remaining);
      break;
    case 'taxii':
      list.push('x-taxii-limit', limit, 'x-taxii-remaining', remaining);
      break;
  }
}

/** Sets every quota header for `counter` on the reply. */
export function setQuotaHeaders(reply: FastifyReply, counter: Counter, outcome: QuotaOutcome, now: number) {
  const list: (string | number)[] = [];
  pushQuotaHeaders(list, counter, outcome, now);
  for (let i = 0; i < list.length; i += 2) reply.header(String(list[i]), list[i + 1]);
}

/** The 429 for an exhausted counter, with Retry-After = seconds to the next UTC midnight. */
export function quotaExceeded(counter: Counter, now: number): ApiError {
  const seconds = Math.max(1, Math.ceil(msUntilNextUtcMidnight(now) / 1000));
  return new ApiError(
    'quota_exceeded',
    `The daily ${counter} quota for this key is used up; it resets at 00:00 UTC.`,
    undefined,
    {
      'Retry-After': String(seconds),
    },
  );
}

/**
 * Charges `units` of `counter` to the request's key. All-or-nothing unless `partial`, where as many as
 * fit are granted. Sets the headers; throws 429 when nothing could be granted.
 */
export async function charge(
  services: Services,
  request: FastifyRequest,
  reply: FastifyReply,
  counter: Counter,
  units: number,
  options: { partial?: boolean; now?: number } = {},
): Promise<QuotaOutcome> {
  const key = keyOf(request);
  const now = options.now ?? services.clock.now();
  const outcome = await services.quota.consume({
    keyId: key.id,
    counter,
    units,
    limit: key.limits[counter],
    now,
    partial: options.partial ?? false,
  });
  setQuotaHeaders(reply, counter, outcome, now);
  if (units > 0 && outcome.granted === 0) throw quotaExceeded(counter, now);
  return outcome;
}

/**
 * Charges one unit synchronously when this process holds reserved units for the key (decision 0006)
 * and sets the headers; false when the caller must `charge` instead. Lets a fully cached request be
 * answered without a promise.
 */
export function chargeOneReserved(
  services: Services,
  request: FastifyRequest,
  reply: FastifyReply,
  counter: Counter,
  now: number,
): boolean {
  const consumeReserved = services.quota.consumeReserved;
  if (consumeReserved === undefined) return false;
  const key = keyOf(request);
  const outcome = consumeReserved.call(services.quota, {
    keyId: key.id,
    counter,
    units: 1,
    limit: key.limits[counter],
    now,
    partial: false,
  });
  if (outcome === undefined) return false;
  setQuotaHeaders(reply, counter, outcome, now);
  return true;
}
