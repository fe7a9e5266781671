// Time helpers: the injectable clock, UTC days, and the input timestamp rules of SPEC §2.5.

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

export const DAY_MS = 86_400_000;

/** Days since the epoch for a UTC instant (the quota day, SPEC §2.3). */
export function utcDay(epochMs: number): number {
  return Math.floor(epochMs / DAY_MS);
}

/** Milliseconds until the next 00:00 UTC, at least 1 ms. */
export function msUntilNextUtcMidnight(epochMs: number): number {
  return (utcDay(epochMs) + 1) * DAY_MS - epochMs;
}

export function toIso(epochMs: number): string {
  return new Date(epochMs).toISOString().replace(/\.000Z$/, 'Z');
}

export const TIMESTAMP_FORMAT_HINT = 'ISO-8601, e.g. 2025-04-22T10:00:00Z or 2025-04-22T10:00:00+02:00';

// Date, 'T' or space, time with optional fraction, optional zone (Z or ±hh:mm / ±hhmm / ±hh).
const ISO_PATTERN =
  /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(Z|z|[+-]\d{2}(?::?\d{2})?)?$/;

export type TimestampResult = { ok: true; epochMs: number } | { ok: false; reason: string };

/**
 * Parses an input timestamp (SPEC §2.5): ISO-8601 with an offset or Z; without one it is read as
 * UTC. Refuses anything else, impossible dates, and instants more than 5 minutes after `now`.
 */
export function parseInputTimestamp(text: string, now: number): TimestampResult {
  const match = ISO_PATTERN.exec(text.trim());
  if (!match) return { ok: false, reason: `not a timestamp; expected ${TIMESTAMP_FORMAT_HINT}` };
  const [, y, mo, d, h, mi, s, fraction, zone] = match;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = s === undefined ? 0 : Number(s);
  const ms = fraction === undefined ? 0 : Math.floor(Number(`0.${fraction}`) * 1000);
  let epochMs = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  const check = new Date(epochMs);
  if (
    check.getUTCFullYear() !== year ||
    check.getUTCMonth() !== month - 1 ||
    check.getUTCDate() !== day ||
    hour > 23 ||
    minute > 59 ||
    second > 59
  ) {
    return { ok: false, reason: `not a valid date or time; expected ${TIMESTAMP_FORMAT_HINT}` };
  }
  if (zone && zone !== 'Z' && zone !== 'z') {
    const sign = zone.startsWith('-') ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    const offsetMinutes = Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2) || '0');
    if (offsetMinutes > 18 * 60) return { ok: false, reason: 'the time-zone offset is out of range' };
    epochMs -= sign * offsetMinutes * 60_000;
  }
  if (epochMs > now + 5 * 60_000) return { ok: false, reason: 'is more than 5 minutes in the future' };
  return { ok: true, epochMs };
}
