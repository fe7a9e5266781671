// Evidence throughput on the shared Cowrie logs: `vakt import cowrie`, the store stage alone, sensor ingest over
// HTTP, and the ceiling — raw better-sqlite3 inserts of the same raw-event rows in one transaction. Ingest and
// import report "acknowledged" (stored, answered) and "aggregated" (the aggregator drained; decision 0630).
// Usage: [ROUNDS=3] [BENCH_ONLY=<regex of line names>] node --import tsx bench/evidence.bench.ts (the ceiling
// always runs: the ratios are to it)
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { loadConfig } from '../src/config/config.js';
import type { SensorEvent } from '../src/core/events.js';
import { utcDay } from '../src/core/time.js';
import { buildApp } from '../src/http/build-app.js';
import { importCowrie } from '../src/ingest/importers.js';
import { StoreQuotaCounter } from '../src/quota/store-quota-counter.js';
import { createServices } from '../src/services/services.js';
import { Store } from '../src/store/store.js';
import { intoRetentionWindow, machine, parseCowrieFiles, sharedCowrieFiles } from './lib.js';

const found = sharedCowrieFiles();
if (found === null) {
  console.error('skipped: shared data (honeypot/cowrie) not found; set VAKT_SHARED_DATA');
  process.exit(0);
}
const files = found;
const work = mkdtempSync(join(tmpdir(), 'vakt-bench-evidence-'));
let dbCount = 0;

async function open() {
  const config = loadConfig({
    VAKT_DATABASE_URL: `sqlite:${join(work, `db${dbCount++}.db`)}`,
    VAKT_LOG_LEVEL: 'silent',
  });
  const store = await Store.open(config.databaseUrl);
  const quota = new StoreQuotaCounter(store);
  const services = createServices(config, store, quota, { now: () => Date.now() });
  return { config, store, services };
}

const rate = (events: number, ms: number) => Math.round(events / (ms / 1000));
// CPU time of the whole process (all threads) beside wall time: on a shared machine the load average moves
// wall time a lot; CPU ms per 1,000 events moves much less.
const cpuMs = (since: NodeJS.CpuUsage) => {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1000;
};

try {
  // Parsed once, grouped so that sessions stay whole per chunk (as the importer does).
  const events = await parseCowrieFiles(files);
  const bySession = new Map<string, SensorEvent[]>();
  for (const e of events) {
    const list = bySession.get(e.session) ?? [];
    list.push(e);
    bySession.set(e.session, list);
  }
  const chunks: SensorEvent[][] = [[]];
  for (const list of bySession.values()) {
    const last = chunks[chunks.length - 1] ?? [];
    if (last.length + list.length > 5_000) chunks.push([...list]);
    else last.push(...list);
  }
  console.log(
    `machine: ${machine()}; load average at start ${loadavg()
      .map((n) => n.toFixed(2))
      .join(' / ')}`,
  );
  console.log(
    `${events.length} events, ${bySession.size} sessions, ${chunks.length} batches of ≤ 5,000 events (whole sessions)`,
  );

  // Each measurement: wall ms until acknowledged (every batch stored and answered), until aggregated
  // (the aggregator drained: reputation final), and the process's CPU ms for the whole run.
  interface Run {
    acked: number;
    aggregated: number;
    cpu: number;
    accepted: number;
  }

  // 1. The whole import: gunzip, parse, store; then the drain the import command waits for.
  const importRun = async (): Promise<Run> => {
    const { store, services } = await open();
    // The importer stores each chunk with `ingestAndAggregate` (SQLite: stored and aggregated in one
    // transaction, decision 0631), so "acknowledged" is when the last chunk was committed.
    const ingest = services.evidence.ingest.bind(services.evidence);
    const ingestAndAggregate = services.evidence.ingestAndAggregate.bind(services.evidence);
    let lastAck = 0;
    services.evidence.ingest = async (batch, now) => {
      const outcome = await ingest(batch, now);
      lastAck = performance.now();
      return outcome;
    };
    services.evidence.ingestAndAggregate = async (batch, now) => {
      const outcome = await ingestAndAggregate(batch, now);
      lastAck = performance.now();
      return outcome;
    };
    const started = performance.now();
    const cpuStart = process.cpuUsage();
    const summary = await importCowrie(services, files, { now: Date.now() });
    const run = {
      acked: lastAck - started,
      aggregated: performance.now() - started,
      cpu: cpuMs(cpuStart),
      accepted: summary.accepted,
    };
    await store.close();
    return run;
  };

  // 2. The store stage alone: pre-parsed events through EvidenceService.ingest, then drain.
  const storeRun = async (): Promise<Run> => {
    const { store, services } = await open();
    const started = performance.now();
    const cpuStart = process.cpuUsage();
    let accepted = 0;
    for (const chunk of chunks) accepted += (await services.evidence.ingest(chunk, Date.now())).accepted;
    const acked = performance.now() - started;
    await services.evidence.drain();
    const run = { acked, aggregated: performance.now() - started, cpu: cpuMs(cpuStart), accepted };
    await store.close();
    return run;
  };

  // 3. Sensor ingest over HTTP on loopback, batches of ≤ 5,000, timestamps moved into the retention window;
  // the app's aggregator and WAL checkpointer run beside it (woken after each batch), as in `vakt serve`.
  // `burst`: the aggregator held back until the burst is answered (the request path's cost alone).
  const httpRun = async (burst: boolean): Promise<Run> => {
    const { store, services } = await open();
    const key = (await services.keys.create({ tier: 'sensor' })).key;
    const app = await buildApp(services);
    await app.listen({ host: '127.0.0.1', port: 0 });
    if (burst) {
      await services.evidence.stop();
      services.evidence.start({ quietMs: 600_000, maxLagMs: 600_000, intervalMs: 600_000 });
    }
    const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/v1/sensor/events`;
    const newest = Math.max(...events.map((e) => e.ts));
    const now = Date.now();
    const bodies = chunks.map((chunk) => JSON.stringify({ events: intoRetentionWindow(chunk, now, newest) }));
    const started = performance.now();
    const cpuStart = process.cpuUsage();
    let accepted = 0;
    for (const body of bodies) {
      const res = await fetch(url, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body,
      });
      if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${(await res.text()).slice(0, 300)}`);
      accepted += ((await res.json()) as { accepted: number }).accepted;
    }
    const acked = performance.now() - started;
    await services.evidence.drain();
    const run = { acked, aggregated: performance.now() - started, cpu: cpuMs(cpuStart), accepted };
    await app.close();
    await store.close();
    return run;
  };

  // 4. Ceiling: the same raw-event rows, raw better-sqlite3, one prepared insert, one transaction.
  let ceilings = 0;
  const ceilingRun = async (): Promise<Run> => {
    const sqlite = new BetterSqlite3(join(work, `ceiling${ceilings++}.db`));
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = NORMAL');
    sqlite.exec(
      'create table events (day integer not null, sensor text not null, event_id text not null, session text not null, ip text not null, ts integer not null, type text not null, data text not null, primary key (day, sensor, event_id))',
    );
    const insert = sqlite.prepare('insert into events values (?, ?, ?, ?, ?, ?, ?, ?)');
    const started = performance.now();
    const cpuStart = process.cpuUsage();
    sqlite.transaction(() => {
      for (const e of events) {
        insert.run(utcDay(e.ts), e.sensor, e.id, e.session, e.srcIp, e.ts, e.type, JSON.stringify(e));
      }
    })();
    const ms = performance.now() - started;
    sqlite.close();
    return { acked: ms, aggregated: ms, cpu: cpuMs(cpuStart), accepted: events.length };
  };

  const ROUNDS = Number(process.env.ROUNDS ?? 3);
  const ONLY = process.env.BENCH_ONLY ? new RegExp(process.env.BENCH_ONLY) : null;
  const kinds = {
    import: importRun,
    store: storeRun,
    http: () => httpRun(false),
    'http-burst': () => httpRun(true),
    ceiling: ceilingRun,
  } as const;
  const results: Record<keyof typeof kinds, Run[]> = {
    import: [],
    store: [],
    http: [],
    'http-burst': [],
    ceiling: [],
  };
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, run] of Object.entries(kinds) as [keyof typeof kinds, () => Promise<Run>][]) {
      if (ONLY && name !== 'ceiling' && !ONLY.test(name)) continue;
      const r = await run();
      results[name].push(r);
      console.log(
        `round ${round + 1} ${name}: acknowledged ${rate(r.accepted, r.acked)} ev/s (${r.acked.toFixed(0)} ms), aggregated ${rate(r.accepted, r.aggregated)} ev/s (${r.aggregated.toFixed(0)} ms); cpu ${r.cpu.toFixed(0)} ms, ${((r.cpu / r.accepted) * 1000).toFixed(1)} ms per 1k events`,
      );
    }
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
  const med = (name: keyof typeof kinds, field: 'acked' | 'aggregated' | 'cpu') =>
    median(results[name].map((r) => r[field]));
  console.log(
    `medians of ${ROUNDS} (load average now ${loadavg()
      .map((n) => n.toFixed(2))
      .join(' / ')}):`,
  );
  const ceiling = med('ceiling', 'acked');
  for (const name of Object.keys(kinds) as (keyof typeof kinds)[]) {
    if (results[name].length === 0) continue;
    const n = results[name][0]?.accepted ?? 0;
    console.log(
      `  ${name}: acknowledged ${rate(n, med(name, 'acked'))} ev/s (${(med(name, 'acked') / ceiling).toFixed(2)}× ceiling time), aggregated ${rate(n, med(name, 'aggregated'))} ev/s (${(med(name, 'aggregated') / ceiling).toFixed(2)}×); cpu ${((med(name, 'cpu') / n) * 1000).toFixed(1)} ms per 1k events`,
    );
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
