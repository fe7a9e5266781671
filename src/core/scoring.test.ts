import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DEFAULT_SCORING_POLICY,
  EMPTY_SCORING_INPUT,
  reporterTrust,
  reporterWeight,
  type ScoringInput,
  type Severity,
  saturate,
  score,
  threatLevel,
} from './scoring.js';

const contributors = (reportsPerReporter: number[], trust = 1) =>
  reportsPerReporter.reduce((sum, n) => sum + reporterWeight(n, trust), 0);

const withContributors = (weight: number): ScoringInput => ({
  ...EMPTY_SCORING_INPUT,
  contributorWeight: weight,
});

// A small deterministic generator so property tests are repeatable.
function random(seed: number) {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
    return state / 2_147_483_648;
  };
}

function randomInput(next: () => number): ScoringInput {
  const severities: Severity[] = ['low', 'medium', 'high', 'very_high'];
  return {
    sensor: {
      sessions: Math.floor(next() * 50),
      protocols: Math.floor(next() * 4),
      primitives: Math.floor(next() * 10),
      behaviors: Array.from({ length: Math.floor(next() * 4) }, () => ({
        severity: severities[Math.floor(next() * (next() < 0.9 ? 3 : 4))] ?? 'low',
        count: 1 + Math.floor(next() * 20),
      })),
    },
    contributorWeight:
      next() < 0.5 ? 0 : contributors([1 + Math.floor(next() * 5), 1 + Math.floor(next() * 50)]),
    feeds: next() < 0.7 ? [] : [{ trust: next() }],
    whitelistFactor: null,
  };
}

describe('score', () => {
  it('lets distinct reporters dominate volume (SPEC §5 item 2)', () => {
    const fiveReporters = score(withContributors(contributors([1, 1, 1, 1, 1]))).confidenceLevel;
    const oneReporter = score(withContributors(contributors([100]))).confidenceLevel;
    assert.ok(fiveReporters > oneReporter, `${fiveReporters} > ${oneReporter}`);
  });

  it('caps one reporter however often it reports', () => {
    const cap = DEFAULT_SCORING_POLICY.contributor.perReporterCap;
    assert.equal(reporterWeight(1_000_000, 1), cap);
    assert.equal(reporterWeight(10_000, 1), reporterWeight(1_000_000, 1));
  });

  it('weights reporters by trust, lower for new keys', () => {
    assert.ok(reporterWeight(3, 0.5) < reporterWeight(3, 1));
    assert.ok(reporterTrust(null, 0) < reporterTrust(null, 30 * 86_400_000));
    assert.equal(reporterTrust(null, 30 * 86_400_000), DEFAULT_SCORING_POLICY.contributor.defaultTrust);
    assert.equal(reporterTrust(0.2, 30 * 86_400_000), 0.2);
  });

  it('never lets feeds alone exceed 50 (item 3)', () => {
    const many = score({ ...EMPTY_SCORING_INPUT, feeds: Array.from({ length: 20 }, () => ({ trust: 1 })) });
    assert.ok(many.confidenceLevel <= 50);
    assert.ok(score({ ...EMPTY_SCORING_INPUT, feeds: [{ trust: 0.3 }] }).confidenceLevel > 0);
  });

  it('multiplies agreeing sources by a factor that grows with the weaker one (item 4)', () => {
    const strongSensor: ScoringInput['sensor'] = {
      sessions: 40,
      protocols: 2,
      primitives: 6,
      behaviors: [{ severity: 'high', count: 5 }],
    };
    const sensorOnly = score({ ...EMPTY_SCORING_INPUT, sensor: strongSensor });
    const plusOne = score({
      ...EMPTY_SCORING_INPUT,
      sensor: strongSensor,
      contributorWeight: contributors([1]),
    });
    const plusMany = score({
      ...EMPTY_SCORING_INPUT,
      sensor: strongSensor,
      contributorWeight: contributors([1, 1, 1, 1, 1, 1]),
    });
    assert.equal(sensorOnly.breakdown.crossSourceMultiplier, 1);
    assert.ok(plusOne.breakdown.crossSourceMultiplier > 1);
    assert.ok(plusMany.breakdown.crossSourceMultiplier > plusOne.breakdown.crossSourceMultiplier);
    // One stray report barely moves a strong sensor score.
    assert.ok(
      plusOne.confidenceLevel - sensorOnly.confidenceLevel <= 6,
      `${sensorOnly.confidenceLevel} → ${plusOne.confidenceLevel}`,
    );
  });

  it('saturates monotonically into 0–100 and preserves order (item 5)', () => {
    let previous = -1;
    for (let raw = 0; raw < 2000; raw += 0.7) {
      const level = saturate(raw);
      assert.ok(level >= previous && level >= 0 && level <= 100);
      previous = level;
    }
    assert.equal(saturate(0), 0);
    assert.equal(saturate(1e9), 100);
  });

  it('lifts any very_high behaviour to the critical floor (item 6)', () => {
    const result = score({
      ...EMPTY_SCORING_INPUT,
      sensor: { sessions: 1, protocols: 1, primitives: 1, behaviors: [{ severity: 'very_high', count: 1 }] },
    });
    assert.ok(result.confidenceLevel >= DEFAULT_SCORING_POLICY.criticalFloor);
    assert.equal(result.breakdown.floorApplied, result.breakdown.raw < 69.3);
  });

  it('applies the whitelist factor last unless ignored (item 7)', () => {
    const input = { ...withContributors(contributors([1, 1, 1, 1])), whitelistFactor: 0.25 };
    const discounted = score(input);
    const raw = score({ ...input, ignoreWhitelist: true });
    assert.equal(discounted.confidenceLevel, Math.round(raw.confidenceLevel * 0.25));
    assert.equal(discounted.breakdown.whitelistFactor, 0.25);
    assert.equal(raw.breakdown.whitelistFactor, 1);
  });

  it('never lowers the score when evidence is added (item 8)', () => {
    const next = random(42);
    for (let i = 0; i < 2000; i++) {
      const base = randomInput(next);
      const before = score(base).confidenceLevel;
      const additions: ScoringInput[] = [
        { ...base, sensor: { ...base.sensor, sessions: base.sensor.sessions + 1 } },
        { ...base, sensor: { ...base.sensor, protocols: base.sensor.protocols + 1 } },
        { ...base, sensor: { ...base.sensor, primitives: base.sensor.primitives + 1 } },
        {
          ...base,
          sensor: { ...base.sensor, behaviors: [...base.sensor.behaviors, { severity: 'medium', count: 1 }] },
        },
        { ...base, contributorWeight: base.contributorWeight + reporterWeight(1, 0.5) },
        { ...base, feeds: [...base.feeds, { trust: 0.4 }] },
      ];
      for (const added of additions) {
        const after = score(added).confidenceLevel;
        assert.ok(after >= before, `added evidence lowered ${before} to ${after}: ${JSON.stringify(added)}`);
      }
    }
  });

  it('is deterministic and explains itself', () => {
    const input = randomInput(random(7));
    assert.deepEqual(score(input), score(input));
    assert.equal(score(EMPTY_SCORING_INPUT).confidenceLevel, 0);
  });

  it('bands threat levels as SPEC §3.1 says', () => {
    const bands: [number, string][] = [
      [0, 'none'],
      [1, 'low'],
      [24, 'low'],
      [25, 'medium'],
      [49, 'medium'],
      [50, 'high'],
      [74, 'high'],
      [75, 'very_high'],
      [89, 'very_high'],
      [90, 'critical'],
      [100, 'critical'],
    ];
    for (const [level, band] of bands) assert.equal(threatLevel(level), band);
  });
});
