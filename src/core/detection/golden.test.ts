// Runs every golden case in ./golden/*.json and checks that every catalog behaviour has a positive case.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type SensorEvent, validateEvent } from '../events.js';
import { loadCatalog } from './catalog.js';
import { classifyEvents, compileCatalog } from './classify.js';

interface GoldenCase {
  behavior: string;
  description?: string;
  events: Array<Record<string, unknown> & { repeat?: number }>;
  expect: { behaviors: string[]; notBehaviors: string[] };
}

const GOLDEN_DIR = fileURLToPath(new URL('./golden/', import.meta.url));
const NOW = Date.parse('2026-03-15T12:00:00Z');
const DEFAULT_PORTS: Record<string, number> = {
  ssh: 22,
  telnet: 23,
  ftp: 21,
  smtp: 25,
  http: 80,
  redis: 6379,
  mysql: 3306,
};

// Golden files list only what matters for a case; the rest of each event is filled in here.
function expand(events: GoldenCase['events']): SensorEvent[] {
  const out: SensorEvent[] = [];
  let index = 0;
  for (const raw of events) {
    const { repeat = 1, ...fields } = raw;
    for (let i = 0; i < repeat; i++) {
      index++;
      const protocol = String(fields.protocol ?? 'ssh');
      const input = {
        id: `golden-${index}`,
        ts: NOW - 60_000 + index * 1000,
        sensor: 'golden',
        session: 'session-1',
        srcIp: '45.83.12.40',
        srcPort: 40000 + index,
        dstPort: DEFAULT_PORTS[protocol] ?? 9999,
        ...(fields.type === 'request' ? { userAgent: null, body: null } : {}),
        ...fields,
      };
      const result = validateEvent(input, NOW, null);
      if (!result.ok) throw new Error(`golden event ${JSON.stringify(raw)} is invalid: ${result.reason}`);
      out.push(result.event);
    }
  }
  return out;
}

const files = readdirSync(GOLDEN_DIR).filter((name) => name.endsWith('.json'));
const cases: Array<{ file: string; golden: GoldenCase }> = files.flatMap((file) =>
  (JSON.parse(readFileSync(join(GOLDEN_DIR, file), 'utf8')) as GoldenCase[]).map((golden) => ({
    file,
    golden,
  })),
);
const catalog = loadCatalog();
const compiled = compileCatalog(catalog);
const behaviorNames = new Set(catalog.behaviors.map((behavior) => behavior.name));

describe('detection golden cases', () => {
  for (const { file, golden } of cases) {
    it(`${file}: ${golden.behavior} — ${golden.description ?? ''}`, () => {
      for (const name of [golden.behavior, ...golden.expect.behaviors, ...golden.expect.notBehaviors]) {
        assert.ok(behaviorNames.has(name), `unknown behaviour "${name}" in the golden case`);
      }
      const result = classifyEvents(expand(golden.events), compiled);
      const fired = [...result.behaviors.keys()];
      for (const name of golden.expect.behaviors) {
        assert.ok(result.behaviors.has(name), `expected ${name}; fired: ${fired.join(', ') || 'nothing'}`);
      }
      for (const name of golden.expect.notBehaviors) {
        assert.ok(!result.behaviors.has(name), `did not expect ${name}; fired: ${fired.join(', ')}`);
      }
    });
  }

  it('covers every behaviour with at least one positive case', () => {
    const covered = new Set(cases.flatMap(({ golden }) => golden.expect.behaviors));
    const missing = [...behaviorNames].filter((name) => !covered.has(name));
    assert.deepEqual(missing, [], `behaviours without a positive golden case: ${missing.join(', ')}`);
  });

  it('has at least 40 behaviours and some negative cases', () => {
    assert.ok(behaviorNames.size >= 40);
    assert.ok(cases.filter(({ golden }) => golden.expect.behaviors.length === 0).length >= 3);
  });
});
