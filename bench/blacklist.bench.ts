// Blacklist and bulk-report benchmark on 1,000,000 reputations built from ../shared/data/blocklists (SQLite).
// Env: BENCH_DB=<dir> keeps the built database there and reuses it on the next run (the bulk runs add
// reports to it); BENCH_ONLY=<regex> runs only the measurements whose label matches; BENCH_RUNS=n (default 5);
// BENCH_SAMPLES=1 prints every sorted sample beside the median.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { loadConfig } from '../src/config/config.js';
import { isPublicIp, parseIp } from '../src/core/ip.js';
import { buildApp } from '../src/http/build-app.js';
import { StoreQuotaCounter } from '../src/quota/store-quota-counter.js';
import { createServices } from '../src/services/services.js';
import { Store } from '../src/store/store.js';
import { sharedDataFile } from '../test/support/shared-data.js';
import { machine } from './lib.js';

const TOTAL = 1_000_000;
const LISTED = 350_000;
const dataDir = sharedDataFile('blocklists') ?? '../shared/data/blocklists';

function* blocklistFiles(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* blocklistFiles(path);
    else if (name.endsWith('.txt') || name.endsWith('.ipset') || name.endsWith('.netset')) yield path;
  }
}

function addresses(): string[] {
  const seen = new Set<string>();
  try {
    for (const file of blocklistFiles(dataDir)) {
      for (const line of readFileSync(file, 'utf8').split('\n')) {
        const text = line.split(/[\s#]/)[0] ?? '';
        if (text === '' || text.includes('/')) continue;
        const parsed = parseIp(text);
        if (parsed.ok && isPublicIp(parsed.ip)) seen.add(parsed.ip.text);
        if (seen.size >= TOTAL) break;
      }
      if (seen.size >= TOTAL) break;
    }
  } catch {
    console.log(`(no blocklists at ${dataDir}; generating every address)`);
  }
  const fromLists = seen.size;
  for (let i = 0; seen.size < TOTAL; i++)
    seen.add(`${80 + (i >> 24)}.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
  console.log(`addresses: ${fromLists} from the real blocklists, ${TOTAL - fromLists} generated`);
  return [...seen];
}

function build(raw: BetterSqlite3.Database, list: readonly string[]): void {
  const insert =
    raw.prepare(`insert into reputations (ip, ip_key, ip_version, first_seen, last_seen, score, score_raw,
    score_updated_at, sessions, country_code, asn, asn_org, stix_id) values (?,?,?,?,?,?,?,?,?,?,?,?,?)`);
  const now = Date.now();
  raw.transaction(() => {
    list.forEach((ip, i) => {
      const parsed = parseIp(ip);
      if (!parsed.ok) return;
      // The first 350,000 qualify (score ≥ 50), the rest do not.
      const score = i < LISTED ? 50 + (i % 51) : i % 50;
      insert.run(
        ip,
        parsed.ip.key,
        parsed.ip.version,
        now - 86_400_000,
        now - (i % 86_400) * 1000,
        score,
        score,
        now,
        1 + (i % 40),
        'CN',
        '4134',
        'Chinanet',
        `indicator--${randomUUID()}`,
      );
    });
  })();
  raw.pragma('wal_checkpoint(TRUNCATE)');
  raw.exec('analyze');
}

const ONLY = process.env.BENCH_ONLY ? new RegExp(process.env.BENCH_ONLY) : null;
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const SAMPLES = process.env.BENCH_SAMPLES === '1';

/**
 * Times `work` `runs` times and prints medians and minima. Three clocks:
 * - wall: the client's round trip (`app.inject` from call to resolved response), in this process;
 * - server (with `server`): Fastify's `reply.elapsedTime` read in `onResponse`, i.e. from the request's
 *   arrival at Fastify's router (body not yet parsed) to the end of the response, in-process;
 * - after (with `after`): work run once the response is back and not part of the other two, each step
 *   timed on its own (the bulk runs apply the accepted rows there — decision 0853: how long until every
 *   score is final — and then drain the TAXII outbox: how long until the feed has the batch).
 */
async function time<T>(
  label: string,
  work: () => Promise<T>,
  runs = RUNS,
  server?: () => number,
  after: readonly { label: string; work: () => Promise<unknown> }[] = [],
): Promise<T | undefined> {
  if (ONLY && !ONLY.test(label)) return undefined;
  let result: T | undefined;
  const serverTimes: number[] = [];
  const times: number[] = [];
  const afterTimes = after.map(() => [] as number[]);
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    result = await work();
    times.push(performance.now() - start);
    if (server) serverTimes.push(server());
    for (const [step, { work: afterWork }] of after.entries()) {
      const begin = performance.now();
      await afterWork();
      afterTimes[step]?.push(performance.now() - begin);
    }
  }
  const line = (list: number[]) => {
    list.sort((a, b) => a - b);
    const all = SAMPLES ? ` [${list.map((n) => n.toFixed(0)).join(' ')}]` : '';
    return `median ${list[Math.floor(runs / 2)]?.toFixed(1)} ms (min ${list[0]?.toFixed(1)})${all}`;
  };
  const inServer = server ? `  server ${line(serverTimes)}` : '';
  const afterwards = after.map((step, i) => `  ${step.label} ${line(afterTimes[i] ?? [])}`).join('');
  console.log(`${label.padEnd(48)} wall ${line(times)}${inServer}${afterwards}`);
  return result as T;
}

const keep = process.env.BENCH_DB;
if (keep) mkdirSync(keep, { recursive: true });
const dir = keep ?? mkdtempSync(join(tmpdir(), 'vakt-bench-'));
const reuse = keep !== undefined && existsSync(join(dir, 'vakt.db'));
try {
  console.log(machine());
  console.log(
    `load average at start: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  const url = `sqlite:${join(dir, 'vakt.db')}`;
  await (await Store.open(url)).close();
  const raw = new BetterSqlite3(join(dir, 'vakt.db'));
  const list = addresses();
  if (!reuse) build(raw, list);
  else console.log(`(reusing the database in ${dir})`);

  const store = await Store.open(url);
  const config = loadConfig({ VAKT_DATABASE_URL: url, VAKT_LOG_LEVEL: 'silent' });
  const services = createServices(config, store, new StoreQuotaCounter(store), { now: () => Date.now() });
  const app = await buildApp(services);
  const key = (await services.keys.create({ tier: 'unlimited' })).key;
  const headers = { authorization: `Bearer ${key}` };

  // Time inside Fastify for the last request (from its arrival to the end of the response).
  let lastElapsed = 0;
  app.addHook('onResponse', async (_request, reply) => {
    lastElapsed = reply.elapsedTime;
  });
  const serverTime = () => lastElapsed;

  const selectSql =
    'select ip from reputations where score >= 50 order by score desc, last_seen desc, ip desc limit ?';
  const selected = raw.prepare(selectSql).pluck().all(LISTED) as string[];
  await time('bare SQLite SELECT of the 350k rows', async () => raw.prepare(selectSql).pluck().all(LISTED));
  const expectedPlain = `${selected.join('\n')}\n`;
  const plain = await time(
    'GET blacklist plaintext 350k',
    async () =>
      app.inject({ method: 'GET', url: `/v1/key/blacklist?plaintext=true&limit=${LISTED}`, headers }),
    RUNS,
    serverTime,
  );
  if (plain) {
    console.log(`  lines: ${plain.body.split('\n').length - 1}`);
    if (plain.body !== expectedPlain) throw new Error('plaintext differs from the bare SELECT');
  }
  const listFile = join(dir, 'list.txt');
  writeFileSync(listFile, expectedPlain);
  const aggregated = await time(
    'GET blacklist plaintext 350k aggregate=true',
    async () =>
      app.inject({
        method: 'GET',
        url: `/v1/key/blacklist?plaintext=true&aggregate=true&limit=${LISTED}`,
        headers,
      }),
    RUNS,
    serverTime,
  );
  const ipranged = await time('iprange aggregating the same 350k addresses', async () =>
    execFileSync('iprange', [listFile], { maxBuffer: 256 * 1024 * 1024 }).toString(),
  );
  // The same two, alternated request by request, so that the machine's slow and fast spells fall on
  // both sides alike (on a shared VM they last seconds): medians of each and of the per-pair ratio.
  const PAIRED = 'aggregate=true and iprange, alternated';
  if (!ONLY || ONLY.test(PAIRED)) {
    const ours: number[] = [];
    const theirs: number[] = [];
    const ratios: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      await app.inject({
        method: 'GET',
        url: `/v1/key/blacklist?plaintext=true&aggregate=true&limit=${LISTED}`,
        headers,
      });
      ours.push(serverTime());
      const begin = performance.now();
      execFileSync('iprange', [listFile], { maxBuffer: 256 * 1024 * 1024 });
      theirs.push(performance.now() - begin);
      ratios.push((ours.at(-1) ?? 0) / (theirs.at(-1) ?? 1));
    }
    const median = (list: number[]) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)] ?? 0;
    console.log(
      `${PAIRED.padEnd(48)} server median ${median(ours).toFixed(1)} ms, iprange median ${median(theirs).toFixed(1)} ms, median ratio ${median(ratios).toFixed(2)} (${ratios.filter((r) => r <= 1).length} of ${RUNS} pairs ≤ 1)`,
    );
  }
  if (aggregated) {
    const ours = aggregated.body.split('\n').filter(Boolean);
    console.log(`  CIDRs: ${ours.length}`);
    if (ipranged) {
      // iprange writes single addresses bare too; the sets must be identical.
      const theirs = ipranged.split('\n').filter(Boolean);
      const same = ours.length === theirs.length && ours.every((cidr, i) => cidr === theirs[i]);
      console.log(`  same CIDRs as iprange: ${same}`);
    }
  }
  await time(
    'GET blacklist json 350k',
    async () => app.inject({ method: 'GET', url: `/v1/key/blacklist?limit=${LISTED}`, headers }),
    RUNS,
    serverTime,
  );
  await time(
    'GET blacklist csv 350k',
    async () => app.inject({ method: 'GET', url: `/v1/key/blacklist?format=csv&limit=${LISTED}`, headers }),
    RUNS,
    serverTime,
  );

  // A bulk request stores its rows as pending and answers; they are applied after the response (decision
  // 0853), and their TAXII versions published by the outbox after that (decision 0852). The bench runs
  // both after each request, outside the timed request, and reports how long each took.
  const publish = [
    { label: 'applied after', work: () => services.bulkQueue.drain() },
    { label: 'TAXII after', work: () => services.taxiiOutbox.drain() },
  ];
  await app.ready();
  // No background work inside a timed request or beside the raw baseline's write transaction.
  await services.evidence.stop();
  await services.bulkQueue.stop(); // no background drain inside a timed request
  await services.taxiiOutbox.stop();

  // Baseline for the bulk runs: 10,000 `reports` rows (the raw telemetry alone, no aggregates, no
  // indexes beyond the table's own) inserted with one prepared statement in one transaction.
  {
    const insert = raw.prepare(`insert into reports (ip, ip_key, key_id, category, categories, protocol,
      comment, reported_at, received_at, day) values (?, ?, 'bench-baseline', 'brute_force', 'brute_force', 'ssh',
      null, ?, ?, ?)`);
    const baselineRows = list.slice(LISTED, LISTED + 10_000).map((ip) => {
      const parsed = parseIp(ip);
      return { ip, key: parsed.ok ? parsed.ip.key : Buffer.alloc(16) };
    });
    await time('baseline: 10,000 raw SQLite report inserts', async () => {
      const at = Date.now();
      raw.transaction(() => {
        for (const row of baselineRows) insert.run(row.ip, row.key, at, at, Math.floor(at / 86_400_000));
      })();
    });
  }

  const rows = list.slice(LISTED, LISTED + 10_000);
  const json = JSON.stringify({
    reports: rows.map((ip) => ({ ip, category: 'brute_force', protocol: 'ssh' })),
  });
  const csv = rows.map((ip) => `${ip},brute_force,ssh,bench`).join('\n');
  for (const [label, payload, type] of [
    ['bulk-report 10,000 rows JSON', json, 'application/json'],
    ['bulk-report 10,000 rows CSV', csv, 'text/csv'],
  ] as const) {
    // A new key per run so no row merges with the last run's and the quota never bites.
    const keys: string[] = [];
    for (let i = 0; i < RUNS; i++) keys.push((await services.keys.create({ tier: 'unlimited' })).key);
    const versionsBefore = raw.prepare('select count(*) from taxii_versions').pluck().get() as number;
    await time(
      label,
      async () => {
        const k = keys.pop();
        const res = await app.inject({
          method: 'POST',
          url: '/v1/key/bulk-report',
          headers: { authorization: `Bearer ${k}`, 'content-type': type },
          payload,
        });
        if (res.json().accepted !== 10_000) throw new Error(res.body.slice(0, 300));
        return res;
      },
      RUNS,
      serverTime,
      publish,
    );
    const versionsAfter = raw.prepare('select count(*) from taxii_versions').pluck().get() as number;
    if (!ONLY || ONLY.test(label)) {
      console.log(
        `  TAXII versions published per run: ${Math.round((versionsAfter - versionsBefore) / RUNS)}`,
      );
    }
  }
  // 10,000 addresses the database has never seen (a new block per run): new reputation rows, one
  // report each, scores under the TAXII threshold, so this is the write path without feed publishing.
  {
    let block = 0;
    // Second octet from the clock, so a reused database (BENCH_DB) gets addresses it has not seen either.
    const second = Math.floor(Date.now() / 1000) % 251;
    const keys: string[] = [];
    for (let i = 0; i < RUNS; i++) keys.push((await services.keys.create({ tier: 'unlimited' })).key);
    const versionsBefore = raw.prepare('select count(*) from taxii_versions').pluck().get() as number;
    const label = 'bulk-report 10,000 new IPs JSON (no TAXII)';
    await time(
      label,
      async () => {
        block++;
        const fresh = Array.from(
          { length: 10_000 },
          (_, i) => `${200 + block}.${second}.${i >> 8}.${i & 255}`,
        );
        const res = await app.inject({
          method: 'POST',
          url: '/v1/key/bulk-report',
          headers: { authorization: `Bearer ${keys.pop()}`, 'content-type': 'application/json' },
          payload: { reports: fresh.map((ip) => ({ ip, category: 'brute_force', protocol: 'ssh' })) },
        });
        if (res.json().accepted !== 10_000) throw new Error(res.body.slice(0, 300));
        return res;
      },
      RUNS,
      serverTime,
      publish,
    );
    const versionsAfter = raw.prepare('select count(*) from taxii_versions').pluck().get() as number;
    if (!ONLY || ONLY.test(label)) {
      console.log(
        `  TAXII versions published per run: ${Math.round((versionsAfter - versionsBefore) / RUNS)}`,
      );
    }
  }
  console.log(
    `load average at end: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  await app.close();
  await store.close();
  raw.close();
} finally {
  if (!keep) rmSync(dir, { recursive: true, force: true });
}
