// events.data written field by field (decision 0640) is the text the object-spread form gives.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type SensorEvent, validateEvent } from '../src/core/events.js';
import { createCowrieParser } from '../src/ingest/cowrie-parser.js';
import { wholeFileLines } from '../src/ingest/read-lines.js';
import { eventData, eventDataSpread } from '../src/services/event-data.js';
import { sharedDataFile } from './support/shared-data.js';

const NOW = Date.parse('2026-03-15T12:00:00Z');
const base = {
  id: 'e',
  ts: NOW,
  sensor: 's',
  session: 'x',
  srcIp: '45.83.12.40',
  srcPort: null,
  dstPort: 22,
  protocol: 'ssh',
};
const ODD = [
  '',
  'quote " and \\ backslash',
  'line\nbreak\ttab\u0001',
  'é中😀',
  '\ud800 lone surrogate',
  'x'.repeat(5000),
];

function same(event: unknown): void {
  const e = event as SensorEvent;
  assert.equal(eventData(e), eventDataSpread(e), JSON.stringify(event).slice(0, 200));
}

describe('eventData', () => {
  it('matches the spread form for validated events of every type, with awkward strings', () => {
    let n = 0;
    for (const text of ODD) {
      for (const extra of [
        { type: 'connect' },
        { type: 'auth', username: text, password: text, success: true },
        { type: 'command', command: text },
        { type: 'request', method: 'GET', path: text || '/', userAgent: text, body: null },
        { type: 'request', method: 'GET', path: '/', userAgent: null, body: text },
        { type: 'download', url: text || 'u', sha256: null },
        { type: 'tunnel', targetHost: 'h', targetPort: 0, data: text },
        { type: 'disconnect', durationMs: 1.5 },
        { type: 'disconnect' },
      ]) {
        const result = validateEvent({ ...base, srcPort: 1, ...extra }, NOW, null);
        if (!result.ok) continue;
        same(result.event);
        n++;
      }
    }
    assert.ok(n > 40);
  });

  it('falls back to the spread form for events built by hand', () => {
    same({ ...base, type: 'connect', extra: 1 });
    same({ type: 'connect', ...base });
    same({ ...base, type: 'auth', username: 'u', password: undefined, success: false });
    same({ ...base, type: 'auth', username: 'u', success: false });
    same({ ...base, type: 'tunnel', targetHost: 'h', targetPort: 1, data: () => 1 });
    same({ ...base, type: 'download', url: 'u', sha256: Symbol('x') });
    same({ ...base, srcPort: Number.NaN, type: 'disconnect', durationMs: Number.POSITIVE_INFINITY });
    same({ ...base, type: 'nonsense', whatever: 1 });
  });

  it('matches the spread form on the shared Cowrie events', (t) => {
    const dir = sharedDataFile('honeypot', 'cowrie');
    if (dir === null) {
      t.skip('shared data not found');
      return;
    }
    const parser = createCowrieParser({ now: Date.now(), maxAgeMs: null });
    let n = 0;
    for (const name of readdirSync(dir).filter((f) => f.endsWith('.gz'))) {
      for (const line of wholeFileLines(join(dir, name)) ?? []) {
        const event = parser.push(line);
        if (event === null) continue;
        same(event);
        n++;
      }
    }
    assert.ok(n > 10_000);
  });
});
