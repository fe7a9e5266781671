// Measures classifier throughput (events/s, one core) on the shared Cowrie logs, grouped by session.
// Usage: npx tsx bench/classify.bench.ts [rounds]
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { loadCatalog } from '../src/core/detection/catalog.js';
import { classifySession, compileCatalog } from '../src/core/detection/classify.js';
import type { SensorEvent } from '../src/core/events.js';
import { createCowrieParser } from '../src/ingest/cowrie-parser.js';
import { sharedDataFile } from '../test/support/shared-data.js';

const dir = sharedDataFile('honeypot', 'cowrie');
if (dir === null) {
  console.error('skipped: shared data (honeypot/cowrie) not found; set VAKT_SHARED_DATA');
  process.exit(0);
}
const parser = createCowrieParser({ now: Date.now(), maxAgeMs: null });
const sessions = new Map<string, SensorEvent[]>();
const parseStarted = performance.now();
for (const name of readdirSync(dir)
  .filter((file) => file.endsWith('.gz'))
  .sort()) {
  const text = gunzipSync(readFileSync(join(dir, name))).toString('utf8');
  for (const line of text.split('\n')) {
    const event = parser.push(line);
    if (event === null) continue;
    const list = sessions.get(event.session) ?? [];
    list.push(event);
    sessions.set(event.session, list);
  }
}
const parseMs = performance.now() - parseStarted;
const events = [...sessions.values()].reduce((sum, list) => sum + list.length, 0);
console.log(
  `parsed ${parser.tally.lines} lines → ${events} events in ${sessions.size} sessions, ${(parser.tally.lines / (parseMs / 1000)).toFixed(0)} lines/s`,
);

const compiled = compileCatalog(loadCatalog());
const groups = [...sessions.values()];
const rounds = Number(process.argv[2] ?? 5);
const fired = new Map<string, number>();
for (const group of groups)
  for (const name of classifySession(group, compiled).behaviors.keys())
    fired.set(name, (fired.get(name) ?? 0) + 1);
let best = 0;
for (let round = 0; round < rounds; round++) {
  const started = performance.now();
  for (const group of groups) classifySession(group, compiled);
  const rate = events / ((performance.now() - started) / 1000);
  best = Math.max(best, rate);
  console.log(`round ${round + 1}: ${rate.toFixed(0)} events/s`);
}
console.log(
  `best: ${best.toFixed(0)} events/s (${compiled.primitives.length} primitives, ${compiled.behaviors.length} behaviours)`,
);
console.log('sessions per behaviour:', Object.fromEntries([...fired].sort((a, b) => b[1] - a[1])));
