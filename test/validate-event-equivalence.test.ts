// validateEvent (rewritten for speed, decision 0640) against the previous implementation kept in
// test/support: the same verdict, reason and field order for the shared Cowrie events and for every field of
// every event type set to each of a list of awkward values.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { EVENT_TYPES, validateEvent } from '../src/core/events.js';
import { createCowrieParser } from '../src/ingest/cowrie-parser.js';
import { wholeFileLines } from '../src/ingest/read-lines.js';
import { sharedDataFile } from './support/shared-data.js';
import { referenceValidateEvent } from './support/validate-event-reference.js';

const NOW = Date.parse('2026-03-15T12:00:00Z');
const DAY = 86_400_000;

const samples: Record<string, unknown>[] = [
  { type: 'connect' },
  { type: 'auth', username: 'root', password: 'x', success: false },
  { type: 'command', command: 'uname -a' },
  { type: 'request', method: 'GET', path: '/.env', userAgent: 'curl', body: null },
  { type: 'download', url: 'http://x/y', sha256: 'a'.repeat(64) },
  { type: 'tunnel', targetHost: 'example.com', targetPort: 25, data: 'EHLO' },
  { type: 'disconnect', durationMs: 1500 },
].map((extra) => ({
  id: 'ev-1',
  ts: '2026-03-15T11:59:00Z',
  sensor: 'hp-fra-1',
  session: 's-1',
  srcIp: '45.83.12.40',
  srcPort: 50000,
  dstPort: 22,
  protocol: 'ssh',
  ...extra,
}));

const AWKWARD: unknown[] = [
  undefined,
  null,
  '',
  ' ',
  'x',
  'SSH ',
  ' Telnet',
  'a b',
  'bad sensor!',
  'ok.sensor:1@x-y_z',
  '\u0001ctl',
  'tab\there',
  'x'.repeat(33),
  'x'.repeat(65),
  'x'.repeat(129),
  'x'.repeat(300),
  'x'.repeat(9000),
  'A'.repeat(64),
  'a'.repeat(64),
  'a'.repeat(63),
  0,
  -1,
  1.5,
  22,
  65535,
  65536,
  NOW,
  NOW - 40 * DAY,
  NOW + 10 * 60_000,
  '2026-03-15T11:00:00',
  '2026-02-31T11:00:00Z',
  '2026-03-15T11:00:00+02:00',
  'yesterday',
  '10.0.0.1',
  '::ffff:45.83.12.41',
  '2001:db8::1',
  '2a01:4f8::1',
  '999.1.1.1',
  true,
  false,
  [],
  {},
  Number.NaN,
  Number.POSITIVE_INFINITY,
  'connect',
  'auth',
  'unknown',
];

function same(input: unknown, maxAgeMs: number | null): void {
  const expected = JSON.stringify(referenceValidateEvent(input, NOW, maxAgeMs));
  const actual = JSON.stringify(validateEvent(input, NOW, maxAgeMs));
  assert.equal(actual, expected, JSON.stringify(input)?.slice(0, 300));
}

describe('validateEvent equivalence with the reference implementation', () => {
  it('agrees on every field of every type set to awkward values, and on non-objects', () => {
    for (const input of [null, 1, 'x', [], [{}], true]) same(input, null);
    let checked = 0;
    for (const sample of samples) {
      const fields = [...Object.keys(sample), 'extra'];
      for (const field of fields) {
        for (const value of AWKWARD) {
          for (const maxAgeMs of [null, 30 * DAY]) {
            same({ ...sample, [field]: value }, maxAgeMs);
            // Two fields wrong at once: the first problem in the reference's order must be the one named.
            same({ ...sample, [field]: value, session: '' }, maxAgeMs);
            same({ ...sample, [field]: value, protocol: 7 }, maxAgeMs);
            checked += 3;
          }
        }
        const { [field]: _dropped, ...without } = sample;
        same(without, null);
      }
    }
    for (const type of EVENT_TYPES) for (const sample of samples) same({ ...sample, type }, null);
    assert.ok(checked > 5_000);
  });

  it('agrees on every event of the shared Cowrie logs, as parsed and as sent over HTTP', (t) => {
    const dir = sharedDataFile('honeypot', 'cowrie');
    if (dir === null) {
      t.skip('shared data not found');
      return;
    }
    const parser = createCowrieParser({ now: Date.now(), maxAgeMs: null });
    let n = 0;
    for (const name of readdirSync(dir)
      .filter((f) => f.endsWith('.gz'))
      .sort()
      .slice(0, 10)) {
      for (const line of wholeFileLines(join(dir, name)) ?? []) {
        const event = parser.push(line);
        if (event === null) continue;
        same(JSON.parse(JSON.stringify(event)), null);
        same({ ...event, ts: new Date(event.ts).toISOString() }, 30 * DAY);
        n++;
      }
    }
    assert.ok(n > 1_000);
  });
});
