// The floor of the evidence schema (decision 0606): only the per-event raw writes of the ingest, as raw
// better-sqlite3 prepared statements in transactions of 5,000 whole sessions, beside the evidence bench's
// ceiling (one table, one transaction) and two alternative layouts. Wall and CPU time, three rounds.
// Usage: node --import tsx bench/evidence-floor.bench.ts
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import type { SensorEvent } from '../src/core/events.js';
import { utcDay } from '../src/core/time.js';
import { machine, parseCowrieFiles, sharedCowrieFiles } from './lib.js';

const files = sharedCowrieFiles();
if (files === null) {
  console.error('skipped: shared data (honeypot/cowrie) not found; set VAKT_SHARED_DATA');
  process.exit(0);
}
const events = await parseCowrieFiles(files);
const bySession = new Map<string, SensorEvent[]>();
for (const e of events) bySession.set(e.session, [...(bySession.get(e.session) ?? []), e]);
const chunks: SensorEvent[][] = [[]];
for (const list of bySession.values()) {
  const last = chunks[chunks.length - 1] ?? [];
  if (last.length + list.length > 5_000) chunks.push([...list]);
  else last.push(...list);
}
const stripped = (e: SensorEvent) => {
  const { id: _i, sensor: _s, session: _n, ts: _t, type: _y, ...rest } = e;
  return JSON.stringify(rest);
};

type Writer = (db: BetterSqlite3.Database) => (e: SensorEvent) => void;
const layouts: { label: string; schema: string; writer: Writer; oneTransaction: boolean }[] = [
  {
    label: 'ceiling: one table, one transaction (evidence bench)',
    schema:
      'create table events (day integer not null, sensor text not null, event_id text not null, session text not null, ip text not null, ts integer not null, type text not null, data text not null, primary key (day, sensor, event_id))',
    writer: (db) => {
      const s = db.prepare('insert into events values (?, ?, ?, ?, ?, ?, ?, ?)');
      return (e) => s.run(utcDay(e.ts), e.sensor, e.id, e.session, e.srcIp, e.ts, e.type, JSON.stringify(e));
    },
    oneTransaction: true,
  },
  {
    label: 'Vakt per-event writes: evidence_ids + events, 4 indexes',
    schema: `create table evidence_ids (source text not null, id text not null, ip text not null, primary key (source, id)) without rowid;
      create index evidence_ids_ip_idx on evidence_ids (ip);
      create table events (day integer not null, sensor text not null, event_id text not null, session text not null, ip text not null, ts integer not null, type text not null, data text not null);
      create index events_day_idx on events (day); create index events_session_idx on events (sensor, session);`,
    writer: (db) => {
      const id = db.prepare(
        'insert into evidence_ids (source, id, ip) values (?, ?, ?) on conflict (source, id) do nothing',
      );
      const row = db.prepare('insert into events values (?, ?, ?, ?, ?, ?, ?, ?)');
      return (e) => {
        if (id.run(e.sensor, e.id, e.srcIp).changes === 1) {
          row.run(utcDay(e.ts), e.sensor, e.id, e.session, e.srcIp, e.ts, e.type, stripped(e));
        }
      };
    },
    oneTransaction: false,
  },
  {
    label: 'without evidence_ids: events with day + session indexes',
    schema: `create table events (day integer not null, sensor text not null, event_id text not null, session text not null, ip text not null, ts integer not null, type text not null, data text not null);
      create index events_day_idx on events (day); create index events_session_idx on events (sensor, session);`,
    writer: (db) => {
      const row = db.prepare('insert into events values (?, ?, ?, ?, ?, ?, ?, ?)');
      return (e) => row.run(utcDay(e.ts), e.sensor, e.id, e.session, e.srcIp, e.ts, e.type, stripped(e));
    },
    oneTransaction: false,
  },
  {
    label: 'events clustered by (sensor, session, id) + day index',
    schema: `create table events (sensor text not null, session text not null, event_id text not null, day integer not null, ip text not null, ts integer not null, type text not null, data text not null, primary key (sensor, session, event_id)) without rowid;
      create index events_day_idx on events (day);`,
    writer: (db) => {
      const row = db.prepare('insert into events values (?, ?, ?, ?, ?, ?, ?, ?) on conflict do nothing');
      return (e) => row.run(e.sensor, e.session, e.id, utcDay(e.ts), e.srcIp, e.ts, e.type, stripped(e));
    },
    oneTransaction: false,
  },
];

const work = mkdtempSync(join(tmpdir(), 'vakt-bench-floor-'));
try {
  console.log(`machine: ${machine()}; ${events.length} events in ${chunks.length} transactions`);
  for (let round = 1; round <= 3; round++) {
    for (const [index, layout] of layouts.entries()) {
      const db = new BetterSqlite3(join(work, `r${round}-${index}.db`));
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('cache_size = -65536');
      db.exec(layout.schema);
      const write = layout.writer(db);
      const started = performance.now();
      const cpuStart = process.cpuUsage();
      if (layout.oneTransaction) db.transaction(() => events.forEach(write))();
      else for (const chunk of chunks) db.transaction(() => chunk.forEach(write))();
      const cpu = process.cpuUsage(cpuStart);
      const wall = performance.now() - started;
      console.log(
        `round ${round}  ${layout.label.padEnd(56)} ${wall.toFixed(0).padStart(5)} ms wall ${((cpu.user + cpu.system) / 1000).toFixed(0).padStart(5)} ms cpu`,
      );
      db.close();
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
