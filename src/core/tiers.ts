// Key tiers and their default daily limits (SPEC §2.1, §2.3).

export const TIER_IDS = ['free', 'tier_1', 'tier_2', 'tier_3', 'tier_4', 'unlimited', 'sensor'] as const;
export type TierId = (typeof TIER_IDS)[number];

export const COUNTERS = ['lookups', 'reports', 'blacklist', 'taxii'] as const;
export type Counter = (typeof COUNTERS)[number];

export const ALERT_KINDS = ['ipAlerts', 'rangeAlerts', 'usernameAlerts', 'emailAlerts'] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

export interface Tier {
  readonly id: TierId;
  readonly name: string;
  /** Daily limit per counter; null means no limit. */
  readonly limits: Readonly<Record<Counter, number | null>>;
  /** Alert counts; null means no limit. */
  readonly alerts: Readonly<Record<AlertKind, number | null>>;
  /** Largest range-alert prefix (smallest prefix length) allowed, per family; null means any. */
  readonly largestRange: { readonly v4: number | null; readonly v6: number | null };
}

function tier(
  id: TierId,
  name: string,
  units: number | null,
  blacklist: number | null,
  ranges: number | null,
  v4: number | null,
  v6: number | null,
  perKind: number | null,
): Tier {
  return {
    id,
    name,
    limits: { lookups: units, reports: units, blacklist, taxii: units },
    alerts: { ipAlerts: perKind, rangeAlerts: ranges, usernameAlerts: perKind, emailAlerts: perKind },
    largestRange: { v4, v6 },
  };
}

export const DEFAULT_TIERS: Readonly<Record<TierId, Tier>> = {
  free: tier('free', 'Free', 1_000, 5_000, 1, 28, 64, 5),
  tier_1: tier('tier_1', 'Basic', 7_000, 50_000, 5, 24, 56, 10),
  tier_2: tier('tier_2', 'Small Business', 14_000, 75_000, 10, 20, 52, 20),
  tier_3: tier('tier_3', 'Medium Business', 30_000, 150_000, 20, 16, 48, 40),
  tier_4: tier('tier_4', 'Large Business', 100_000, 350_000, 40, 16, 48, 80),
  unlimited: tier('unlimited', 'Unlimited', null, null, null, null, null, null),
  // Sensor keys may only call the sensor ingest endpoint (SPEC §2.1); they count nothing.
  sensor: tier('sensor', 'Sensor', 0, 0, 0, null, null, 0),
};

export function isTierId(value: string): value is TierId {
  return (TIER_IDS as readonly string[]).includes(value);
}

export function isCounter(value: string): value is Counter {
  return (COUNTERS as readonly string[]).includes(value);
}
