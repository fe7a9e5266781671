// Benchmark (SPEC §4 issue): serving 1,000-indicator TAXII pages from a 1,000,000-reputation database, beside
// JSON.stringify of the same 1,000 pre-built objects (the ceiling). Run: node --import tsx bench/taxii-page.bench.ts
// Env: BENCH_REPUTATIONS (default 1000000), BENCH_PAGES (default 300), BENCH_DATABASE_URL (default a temp SQLite file).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadConfig } from '../src/config/config.js';
import { parseIp } from '../src/core/ip.js';
import { indicatorObject } from '../src/core/stix.js';
import { formatTaxiiTimestamp } from '../src/core/taxii.js';
import { systemClock } from '../src/core/time.js';
import { buildApp } from '../src/http/build-app.js';
import { StoreQuotaCounter } from '../src/quota/store-quota-counter.js';
import { createServices } from '../src/services/services.js';
import { Store } from '../src/store/store.js';

const REPUTATIONS = Number(process.env.BENCH_REPUTATIONS ?? 1_000_000);
const PAGES = Number(process.env.BENCH_PAGES ?? 300);
const BATCH = 500;

function ipFor(i: number): string {
  return `45.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

function summary(label: string, samples: number[]): string {
  const sorted = [...samples].sort((a, b) => a - b);
  const total = samples.reduce((a, b) => a + b, 0);
  return `| ${label} | ${(samples.length / (total / 1000)).toFixed(1)} | ${percentile(sorted, 50).toFixed(2)} | ${percentile(sorted, 99).toFixed(2)} | ${sorted[sorted.length - 1]?.toFixed(2)} |`;
}

const dir = mkdtempSync(join(tmpdir(), 'vakt-bench-'));
const url = process.env.BENCH_DATABASE_URL ?? `sqlite:${join(dir, 'bench.db')}`;
const config = loadConfig({ VAKT_DATABASE_URL: url, VAKT_LOG_LEVEL: 'silent' });
const store = await Store.open(url);
const identityId = 'identity--00000000-0000-4000-8000-000000000001';

// Seeding writes rows directly (the publisher's per-row work would take far longer than the measurement).
const seedStart = performance.now();
const now = Date.now();
const baseUs = (now - 86_400_000) * 1000;
for (let start = 0; start < REPUTATIONS; start += 50_000) {
  await store.transaction(async (tx) => {
    for (let batch = start; batch < Math.min(start + 50_000, REPUTATIONS); batch += BATCH) {
      const reps = [];
      const versions = [];
      for (let i = batch; i < Math.min(batch + BATCH, REPUTATIONS); i++) {
        const parsed = parseIp(ipFor(i));
        if (!parsed.ok) throw new Error('bad ip');
        const uuid = crypto.randomUUID();
        const score = 50 + (i % 50);
        reps.push({
          ip: parsed.ip.text,
          ip_key: parsed.ip.key,
          ip_version: 4,
          first_seen: now - 86_400_000,
          last_seen: now,
          score,
          score_raw: score,
          score_updated_at: now,
          stix_id: uuid,
        });
        const object = indicatorObject(
          {
            ip: parsed.ip.text,
            version: 4,
            stixId: uuid,
            created: now,
            modified: now,
            firstSeen: now - 86_400_000,
            lastSeen: now,
            confidenceLevel: score,
            behaviors: [],
            categories: ['brute_force', 'port_scan'],
          },
          { retentionMs: 30 * 86_400_000, identityId },
        );
        versions.push({
          stix_id: object.id,
          object_type: 'indicator',
          ip: parsed.ip.text,
          date_added_us: baseUs + i,
          created_ms: now,
          modified_ms: now,
          confidence: score,
          revoked: 0,
          is_first: 1,
          is_latest: 1,
          object: JSON.stringify(object),
        });
      }
      await tx.insertInto('reputations').values(reps).execute();
      await tx.insertInto('taxii_versions').values(versions).execute();
    }
  });
}
await store.db
  .updateTable('taxii_clock')
  .set({ last_us: baseUs + REPUTATIONS })
  .execute();
const seedSeconds = (performance.now() - seedStart) / 1000;

const services = createServices(config, store, new StoreQuotaCounter(store), systemClock);
const app = await buildApp(services);
const key = (await services.keys.create({ tier: 'unlimited' })).key;
const headers = { authorization: `Bearer ${key}` };
const pageUrl = (afterUs: number) =>
  `/taxii2/collections/threat-intel/objects/?limit=1000&added_after=${formatTaxiiTimestamp(afterUs)}`;

// Warm-up, then pages at random positions across the million (cold pages, not one cached range).
for (let i = 0; i < 20; i++) await app.inject({ method: 'GET', url: pageUrl(baseUs + i * 1000), headers });
const served: number[] = [];
const ceiling: number[] = [];
let sample: unknown[] = [];
for (let i = 0; i < PAGES; i++) {
  const after = baseUs + Math.floor(Math.random() * (REPUTATIONS - 1000)) - 1;
  const t0 = performance.now();
  const response = await app.inject({ method: 'GET', url: pageUrl(after), headers });
  served.push(performance.now() - t0);
  if (response.statusCode !== 200) throw new Error(`page failed: ${response.statusCode} ${response.body}`);
  if (i === 0) {
    sample = response.json().objects;
    if (sample.length !== 1000) throw new Error(`expected 1000 objects, got ${sample.length}`);
  }
  // The ceiling: serialising the same 1,000 pre-built objects, interleaved so both see the same machine.
  const t1 = performance.now();
  JSON.stringify({ more: true, next: 'x', objects: sample });
  ceiling.push(performance.now() - t1);
}

console.log(
  `engine ${store.dialect}, ${REPUTATIONS} reputations/indicators, seeded in ${seedSeconds.toFixed(1)} s`,
);
console.log('| operation (1,000 indicators per page) | pages/s | p50 ms | p99 ms | max ms |');
console.log('|---|---|---|---|---|');
console.log(summary('GET …/objects/?limit=1000 (auth, quota, keyset query, body)', served));
console.log(summary('JSON.stringify of the same 1,000 pre-built objects (ceiling)', ceiling));

await app.close();
await store.close();
if (!process.env.BENCH_DATABASE_URL && !process.env.BENCH_KEEP) rmSync(dir, { recursive: true, force: true });
