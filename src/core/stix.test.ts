import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  attackReference,
  type IndicatorReputation,
  identityObject,
  indicatorObject,
  parseStixId,
  stixId,
  stixTimestamp,
  TLP_CLEAR_MARKING,
  TLP_CLEAR_MARKING_ID,
} from './stix.js';

const IDENTITY_UUID = '6f0a6d1e-8e8a-4b0e-9d6a-0c1f2e3d4a5b';
const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 2, 3, 4, 5, 678);

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
      { name: 'ssh_brute_force', mitre: ['T1110.001'], killChainPhase: 'credential-access' },
      { name: 'malware_download', mitre: ['T1105', 'T1110.001'], killChainPhase: 'command-and-control' },
    ],
    categories: ['brute_force'],
    ...overrides,
  };
}
const opts = { retentionMs: 30 * DAY, identityId: IDENTITY_UUID };

describe('stixTimestamp', () => {
  it('always writes millisecond precision in UTC', () => {
    assert.equal(stixTimestamp(T0), '2026-01-02T03:04:05.678Z');
    assert.equal(stixTimestamp(Date.UTC(2026, 0, 1)), '2026-01-01T00:00:00.000Z');
    assert.equal(stixTimestamp(T0 + 0.9), '2026-01-02T03:04:05.678Z');
  });
  it('refuses times STIX cannot write', () => {
    assert.throws(() => stixTimestamp(Number.NaN), RangeError);
    assert.throws(() => stixTimestamp(Date.UTC(10000, 0, 1)), RangeError);
  });
});

describe('STIX ids', () => {
  it('prefixes bare UUIDs and accepts already-prefixed ids of the same type', () => {
    assert.equal(stixId('identity', IDENTITY_UUID), `identity--${IDENTITY_UUID}`);
    assert.equal(
      stixId('identity', `identity--${IDENTITY_UUID.toUpperCase()}`),
      `identity--${IDENTITY_UUID}`,
    );
  });
  it('throws on a malformed UUID or a mismatched type', () => {
    assert.throws(() => stixId('indicator', 'not-a-uuid'), TypeError);
    assert.throws(() => stixId('indicator', `identity--${IDENTITY_UUID}`), TypeError);
    // Version nibble 0 is not an RFC 4122 UUID; the OASIS identifier schema rejects it.
    assert.throws(() => stixId('indicator', '1b3c0d2e-4f5a-0b6c-8d7e-9f0a1b2c3d4e'), TypeError);
  });
  it('parses type and uuid out of an id', () => {
    assert.deepEqual(parseStixId(`indicator--${IDENTITY_UUID}`), { type: 'indicator', uuid: IDENTITY_UUID });
    assert.equal(parseStixId('203.0.113.7'), null);
    assert.equal(parseStixId('indicator--xyz'), null);
  });
});

describe('attackReference', () => {
  it('links techniques, sub-techniques and tactics to attack.mitre.org', () => {
    assert.equal(attackReference('T1110')?.url, 'https://attack.mitre.org/techniques/T1110/');
    assert.equal(attackReference('t1110.001')?.url, 'https://attack.mitre.org/techniques/T1110/001/');
    assert.equal(attackReference('t1110.001')?.external_id, 'T1110.001');
    assert.equal(attackReference('TA0006')?.url, 'https://attack.mitre.org/tactics/TA0006/');
  });
  it('returns null for ids that are not ATT&CK ids', () => {
    assert.equal(attackReference('CVE-2024-1234'), null);
    assert.equal(attackReference('T11'), null);
  });
});

describe('identityObject', () => {
  it('builds a deterministic organization identity', () => {
    const instance = {
      name: 'Vakt test',
      publicUrl: 'https://vakt.example',
      identityId: IDENTITY_UUID,
      created: T0,
    };
    const identity = identityObject(instance);
    assert.deepEqual(identity, identityObject(instance));
    assert.equal(identity.id, `identity--${IDENTITY_UUID}`);
    assert.equal(identity.identity_class, 'organization');
    assert.equal(identity.created, '2026-01-02T03:04:05.678Z');
    assert.equal(identity.modified, identity.created);
    assert.equal(identityObject({ ...instance, identityClass: 'system' }).identity_class, 'system');
  });
});

describe('TLP:CLEAR', () => {
  it('is the official TLP 2.0 object and cannot be mutated', () => {
    assert.equal(TLP_CLEAR_MARKING.id, 'marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487');
    assert.equal(TLP_CLEAR_MARKING.created, '2022-10-01T00:00:00.000Z');
    assert.equal(TLP_CLEAR_MARKING.name, 'TLP:CLEAR');
    assert.deepEqual(
      TLP_CLEAR_MARKING.extensions['extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d'],
      {
        extension_type: 'property-extension',
        tlp_2_0: 'clear',
      },
    );
    assert.ok(Object.isFrozen(TLP_CLEAR_MARKING));
  });
});

describe('indicatorObject', () => {
  it('maps a reputation to the SPEC §4 indicator', () => {
    const indicator = indicatorObject(rep(), opts);
    assert.equal(indicator.type, 'indicator');
    assert.equal(indicator.spec_version, '2.1');
    assert.equal(indicator.id, 'indicator--1b3c0d2e-4f5a-4b6c-8d7e-9f0a1b2c3d4e');
    assert.equal(indicator.created_by_ref, `identity--${IDENTITY_UUID}`);
    assert.equal(indicator.created, '2026-01-02T03:04:05.678Z');
    assert.equal(indicator.modified, '2026-01-02T03:04:06.678Z');
    assert.deepEqual(indicator.indicator_types, ['malicious-activity']);
    assert.equal(indicator.pattern, "[ipv4-addr:value = '203.0.113.7']");
    assert.equal(indicator.pattern_type, 'stix');
    assert.equal(indicator.pattern_version, '2.1');
    assert.equal(indicator.valid_from, '2026-01-01T03:04:05.678Z');
    assert.equal(indicator.valid_until, '2026-02-01T03:04:05.678Z');
    assert.equal(indicator.confidence, 87);
    assert.deepEqual(indicator.labels, ['brute_force', 'malware_download', 'ssh_brute_force']);
    assert.deepEqual(indicator.kill_chain_phases, [
      { kill_chain_name: 'mitre-attack', phase_name: 'command-and-control' },
      { kill_chain_name: 'mitre-attack', phase_name: 'credential-access' },
    ]);
    assert.deepEqual(indicator.external_references, [
      {
        source_name: 'mitre-attack',
        external_id: 'T1105',
        url: 'https://attack.mitre.org/techniques/T1105/',
      },
      {
        source_name: 'mitre-attack',
        external_id: 'T1110.001',
        url: 'https://attack.mitre.org/techniques/T1110/001/',
      },
    ]);
    assert.deepEqual(indicator.object_marking_refs, [TLP_CLEAR_MARKING_ID]);
    assert.equal('revoked' in indicator, false);
    assert.match(indicator.name, /203\.0\.113\.7/);
  });

  it('writes a canonical IPv6 pattern', () => {
    const indicator = indicatorObject(rep({ ip: '2001:DB8:0:0::1', version: 6 }), opts);
    assert.equal(indicator.pattern, "[ipv6-addr:value = '2001:db8::1']");
  });

  it('canonicalises an IPv4-mapped IPv6 address to an ipv4-addr pattern', () => {
    const indicator = indicatorObject(rep({ ip: '::ffff:203.0.113.7', version: 4 }), opts);
    assert.equal(indicator.pattern, "[ipv4-addr:value = '203.0.113.7']");
  });

  it('is a single comparison whatever the input', () => {
    for (const ip of ['198.51.100.1', '2001:db8::abcd']) {
      const { pattern } = indicatorObject(rep({ ip, version: ip.includes(':') ? 6 : 4 }), opts);
      assert.match(pattern, /^\[ipv[46]-addr:value = '[0-9a-f.:]+'\]$/);
    }
  });

  it('refuses an address that would not be a clean pattern', () => {
    assert.throws(() => indicatorObject(rep({ ip: "1.2.3.4'] OR [x:y = 'z" }), opts), TypeError);
    assert.throws(() => indicatorObject(rep({ ip: '203.0.113.7', version: 6 }), opts), TypeError);
  });

  it('omits empty labels, kill chain phases and references', () => {
    const indicator = indicatorObject(rep({ behaviors: [], categories: [] }), opts);
    assert.equal('labels' in indicator, false);
    assert.equal('kill_chain_phases' in indicator, false);
    assert.equal('external_references' in indicator, false);
    const noMitre = indicatorObject(
      rep({ behaviors: [{ name: 'scan', mitre: ['bogus'], killChainPhase: null }] }),
      opts,
    );
    assert.deepEqual(noMitre.labels, ['brute_force', 'scan']);
    assert.equal('kill_chain_phases' in noMitre, false);
    assert.equal('external_references' in noMitre, false);
  });

  it('normalises kill chain phase names', () => {
    const indicator = indicatorObject(
      rep({ behaviors: [{ name: 'x', mitre: [], killChainPhase: ' Initial Access ' }] }),
      opts,
    );
    assert.deepEqual(indicator.kill_chain_phases, [
      { kill_chain_name: 'mitre-attack', phase_name: 'initial-access' },
    ]);
  });

  it('keeps valid_until strictly after valid_from at the edges', () => {
    const same = indicatorObject(rep({ firstSeen: T0, lastSeen: T0 }), { ...opts, retentionMs: 0 });
    assert.equal(same.valid_from, '2026-01-02T03:04:05.678Z');
    assert.equal(same.valid_until, '2026-01-02T03:04:05.679Z');
    const reversed = indicatorObject(rep({ firstSeen: T0, lastSeen: T0 - 5000 }), {
      ...opts,
      retentionMs: 0,
    });
    assert.ok(reversed.valid_until > reversed.valid_from);
    const subMs = indicatorObject(rep({ firstSeen: T0 + 0.2, lastSeen: T0 + 0.7 }), {
      ...opts,
      retentionMs: 0,
    });
    assert.ok(subMs.valid_until > subMs.valid_from);
    assert.throws(() => indicatorObject(rep(), { ...opts, retentionMs: -1 }), RangeError);
  });

  it('never lets modified precede created', () => {
    const skewed = indicatorObject(rep({ modified: T0 - 50 }), opts);
    assert.equal(skewed.modified, skewed.created);
  });

  it('clamps and rounds the confidence to 0-100', () => {
    assert.equal(indicatorObject(rep({ confidenceLevel: 140 }), opts).confidence, 100);
    assert.equal(indicatorObject(rep({ confidenceLevel: -3 }), opts).confidence, 0);
    assert.equal(indicatorObject(rep({ confidenceLevel: 49.5 }), opts).confidence, 50);
  });

  it('marks a revoked version', () => {
    const indicator = indicatorObject(rep({ revoked: true }), opts);
    assert.equal(indicator.revoked, true);
    assert.equal(indicator.id, indicatorObject(rep(), opts).id);
    assert.equal('revoked' in indicatorObject(rep({ revoked: false }), opts), false);
  });

  it('gives byte-identical JSON whatever order behaviours arrive in', () => {
    const base = rep();
    const shuffled = rep({
      behaviors: [...base.behaviors].reverse(),
      categories: [...base.categories].reverse(),
    });
    assert.equal(
      JSON.stringify(indicatorObject(base, opts)),
      JSON.stringify(indicatorObject(shuffled, opts)),
    );
  });
});
