// The confidence level (SPEC §5): a pure, deterministic function of per-IP aggregates and a versioned policy.
import policyData from './policy/scoring-policy.json' with { type: 'json' };

export type Severity = 'low' | 'medium' | 'high' | 'very_high';

export interface ScoringPolicy {
  readonly version: string;
  /** Raw points at which the curve reaches 1 − 1/e (≈ 63). */
  readonly saturationScale: number;
  readonly sensor: {
    readonly sessionWeight: number;
    readonly protocolDiversityWeight: number;
    readonly primitiveBreadthWeight: number;
    readonly severityWeights: Readonly<Record<Severity, number>>;
  };
  readonly contributor: {
    readonly scale: number;
    /** Most weight one reporter can carry for one IP, however often it reports. */
    readonly perReporterCap: number;
    /** Extra weight per doubling of one reporter's report count. */
    readonly repeatGain: number;
    readonly defaultTrust: number;
    readonly newKeyTrust: number;
    readonly newKeyRampDays: number;
  };
  readonly feed: { readonly pointsPerTrust: number; readonly feedOnlyMaximum: number };
  readonly crossSource: { readonly maxBonus: number; readonly reference: number };
  readonly criticalFloor: number;
}

export const DEFAULT_SCORING_POLICY: ScoringPolicy = policyData as ScoringPolicy;

export interface ScoringInput {
  readonly sensor: {
    readonly sessions: number;
    readonly protocols: number;
    readonly primitives: number;
    readonly behaviors: readonly { readonly severity: Severity; readonly count: number }[];
  };
  /** Σ over reporters of reporterWeight(reports, trust); see reporterWeight. */
  readonly contributorWeight: number;
  readonly feeds: readonly { readonly trust: number }[];
  /** Whitelist discount factor 0–1, or null when the IP matches no known-benign source. */
  readonly whitelistFactor: number | null;
  readonly ignoreWhitelist?: boolean;
}

export interface ScoreBreakdown {
  sensor: number;
  contributor: number;
  feed: number;
  crossSourceMultiplier: number;
  raw: number;
  saturated: number;
  floorApplied: boolean;
  whitelistFactor: number;
}

export interface ScoreResult {
  confidenceLevel: number;
  breakdown: ScoreBreakdown;
}

export const EMPTY_SCORING_INPUT: ScoringInput = {
  sensor: { sessions: 0, protocols: 0, primitives: 0, behaviors: [] },
  contributorWeight: 0,
  feeds: [],
  whitelistFactor: null,
};

/**
 * One reporter's weight for one IP: trust × min(cap, 1 + gain·log2(reports)). Grows slowly with
 * repeats and is capped, so many reports from one key never outweigh a few independent reporters.
 */
export function reporterWeight(
  reports: number,
  trust: number,
  policy: ScoringPolicy = DEFAULT_SCORING_POLICY,
) {
  if (reports <= 0 || trust <= 0) return 0;
  const { perReporterCap, repeatGain } = policy.contributor;
  return trust * Math.min(perReporterCap, 1 + repeatGain * Math.log2(reports));
}

/**
 * A reporter key's trust: its configured trust, ramped up from `newKeyTrust` over the first
 * `newKeyRampDays` of the key's life (SPEC §5 item 2).
 */
export function reporterTrust(
  configured: number | null,
  keyAgeMs: number,
  policy: ScoringPolicy = DEFAULT_SCORING_POLICY,
): number {
  const base = configured ?? policy.contributor.defaultTrust;
  const { newKeyTrust, newKeyRampDays } = policy.contributor;
  if (newKeyRampDays <= 0) return base;
  const progress = Math.min(1, Math.max(0, keyAgeMs / (newKeyRampDays * 86_400_000)));
  return base * (newKeyTrust + (1 - newKeyTrust) * progress);
}

const round1 = (value: number) => Math.round(value * 10) / 10;
const round3 = (value: number) => Math.round(value * 1000) / 1000;

/** Maps unbounded raw points onto 0–100, monotone: 100·(1 − e^(−raw/scale)). */
export function saturate(raw: number, policy: ScoringPolicy = DEFAULT_SCORING_POLICY): number {
  if (raw <= 0) return 0;
  return Math.min(100, Math.round(100 * (1 - Math.exp(-raw / policy.saturationScale))));
}

/** Raw points that saturate to `level` (inverse of saturate before rounding). */
function rawForLevel(level: number, policy: ScoringPolicy): number {
  return -policy.saturationScale * Math.log(1 - level / 100);
}

/**
 * Scores one IP. Guarantees (SPEC §5): components are damped and summed; distinct reporters dominate
 * volume; feeds alone stay ≤ feedOnlyMaximum; agreement between sources multiplies by a factor that
 * grows with the weaker source; the curve is monotone; any very_high behaviour lifts the score to the
 * critical floor; the whitelist factor applies last unless ignored; adding evidence never lowers it.
 */
export function score(input: ScoringInput, policy: ScoringPolicy = DEFAULT_SCORING_POLICY): ScoreResult {
  const { sensor } = input;
  const weights = policy.sensor;
  let sensorPoints = 0;
  if (sensor.sessions > 0) sensorPoints += weights.sessionWeight * Math.log2(1 + sensor.sessions);
  if (sensor.protocols > 1) sensorPoints += weights.protocolDiversityWeight * Math.sqrt(sensor.protocols - 1);
  if (sensor.primitives > 0) sensorPoints += weights.primitiveBreadthWeight * Math.sqrt(sensor.primitives);
  let critical = false;
  for (const behavior of sensor.behaviors) {
    if (behavior.count <= 0) continue;
    sensorPoints += weights.severityWeights[behavior.severity] * Math.log2(1 + behavior.count);
    if (behavior.severity === 'very_high') critical = true;
  }

  const contributorPoints =
    input.contributorWeight > 0 ? policy.contributor.scale * Math.sqrt(input.contributorWeight) : 0;

  const feedCap = rawForLevel(policy.feed.feedOnlyMaximum, policy);
  const feedTrust = input.feeds.reduce((sum, feed) => sum + Math.max(0, Math.min(1, feed.trust)), 0);
  const feedPoints = Math.min(feedCap, policy.feed.pointsPerTrust * feedTrust);

  const sources = [sensorPoints, contributorPoints, feedPoints].filter((p) => p > 0).sort((a, b) => b - a);
  const weaker = sources[1] ?? 0;
  const multiplier = 1 + policy.crossSource.maxBonus * Math.min(1, weaker / policy.crossSource.reference);
  const raw = (sensorPoints + contributorPoints + feedPoints) * multiplier;
  let saturated = saturate(raw, policy);
  const floorApplied = critical && saturated < policy.criticalFloor;
  if (floorApplied) saturated = policy.criticalFloor;

  const factor = input.ignoreWhitelist || input.whitelistFactor === null ? 1 : input.whitelistFactor;
  const confidenceLevel = Math.max(0, Math.min(100, Math.round(saturated * factor)));
  return {
    confidenceLevel,
    breakdown: {
      sensor: round1(sensorPoints),
      contributor: round1(contributorPoints),
      feed: round1(feedPoints),
      crossSourceMultiplier: round3(multiplier),
      raw: round1(raw),
      saturated,
      floorApplied,
      whitelistFactor: factor,
    },
  };
}

export type ThreatLevel = 'none' | 'low' | 'medium' | 'high' | 'very_high' | 'critical';

/** Threat band for a confidence level (SPEC §3.1). */
export function threatLevel(confidenceLevel: number): ThreatLevel {
  if (confidenceLevel <= 0) return 'none';
  if (confidenceLevel < 25) return 'low';
  if (confidenceLevel < 50) return 'medium';
  if (confidenceLevel < 75) return 'high';
  if (confidenceLevel < 90) return 'very_high';
  return 'critical';
}
