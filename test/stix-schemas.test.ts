import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type IndicatorReputation,
  identityObject,
  indicatorObject,
  TLP_CLEAR_MARKING,
} from '../src/core/stix.js';
import { STIX_SCHEMAS_SKIP, validateStix } from './helpers/stix-validator.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 2, 3, 4, 5, 678);
const IDENTITY_UUID = '6f0a6d1e-8e8a-4b0e-9d6a-0c1f2e3d4a5b';
const opts = { retentionMs: 30 * DAY, identityId: IDENTITY_UUID };

function rep(overrides: Partial<IndicatorReputation> = {}): IndicatorReputation {
  return {
    ip: '203.0.113.7',
    version: 4,
    stixId: '1b3c0d2e-4f5a-4b6c-8d7e-9f0a1b2c3d4e',
    created: T0,
    modified: T0 + 1000,
    firstSeen: T0 - DAY,
    lastSeen: T0,
    confidenceLevel: 87,
    behaviors: [
      { name: 'ssh_brute_force', mitre: ['T1110.001', 'T1110'], killChainPhase: 'credential-access' },
      { name: 'malware_download', mitre: ['T1105'], killChainPhase: 'command-and-control' },
    ],
    categories: ['brute_force', 'malware'],
    ...overrides,
  };
}

const cases: Record<string, IndicatorReputation> = {
  'IPv4 with behaviours and categories': rep(),
  'IPv6 with behaviours and categories': rep({ ip: '2001:db8:85a3::8a2e:370:7334', version: 6 }),
  'IPv4 without behaviours or categories': rep({ behaviors: [], categories: [] }),
  'IPv6 without behaviours or categories': rep({
    ip: '2001:db8::1',
    version: 6,
    behaviors: [],
    categories: [],
  }),
  'categories only': rep({ behaviors: [] }),
  'behaviour without MITRE ids or phase': rep({
    behaviors: [{ name: 'scan', mitre: [], killChainPhase: null }],
  }),
  revoked: rep({ revoked: true }),
  'first seen equals last seen, zero retention': rep({ firstSeen: T0, lastSeen: T0 }),
};

describe('STIX objects validate against the OASIS 2.1 schemas', { skip: STIX_SCHEMAS_SKIP }, () => {
  for (const [name, reputation] of Object.entries(cases)) {
    it(`indicator: ${name}`, () => {
      const retention = name.includes('zero retention') ? { ...opts, retentionMs: 0 } : opts;
      const indicator = indicatorObject(reputation, retention);
      assert.deepEqual(validateStix(indicator), []);
      assert.ok(indicator.valid_until > indicator.valid_from, 'valid_until after valid_from');
      assert.match(indicator.pattern, /^\[ipv[46]-addr:value = '[^']+'\]$/, 'a single comparison');
    });
  }

  it('identity', () => {
    const identity = identityObject({
      name: 'Vakt test instance',
      publicUrl: 'https://vakt.example',
      identityId: IDENTITY_UUID,
      created: T0,
    });
    assert.deepEqual(validateStix(identity), []);
  });

  it('TLP:CLEAR marking definition', () => {
    assert.deepEqual(validateStix(TLP_CLEAR_MARKING), []);
  });

  it('the validator does reject a broken indicator', () => {
    const broken = { ...indicatorObject(rep(), opts), labels: [], created: '2026-01-02T03:04:05Z' };
    assert.notDeepEqual(validateStix(broken), []);
    assert.notDeepEqual(validateStix({ ...indicatorObject(rep(), opts), id: 'indicator--nope' }), []);
  });
});
