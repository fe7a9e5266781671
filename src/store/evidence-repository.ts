// Bulk writes of sensor evidence: de-duplication keys and raw events, batched per dialect (ingest hot path).
import type BetterSqlite3 from 'better-sqlite3';
import { sql } from 'kysely';
import type { DbExecutor, EventsTable } from './database.js';
import { sqliteStatement } from './sqlite-rows.js';

export { sqliteStatement, sqliteUpsertRows } from './sqlite-rows.js';

export interface EvidenceIdRow {
  source: string;
  id: string;
  ip: string;
}

const ROWS_PER_STATEMENT = 200;

interface SqliteStatements {
  evidenceId: BetterSqlite3.Statement;
  event: BetterSqlite3.Statement;
}
const prepared = new WeakMap<BetterSqlite3.Database, SqliteStatements>();

function statements(sqlite: BetterSqlite3.Database): SqliteStatements {
  let found = prepared.get(sqlite);
  if (!found) {
    found = {
      evidenceId: sqlite.prepare(
        'insert into evidence_ids (source, id, ip) values (?, ?, ?) on conflict (source, id) do nothing',
      ),
      event: sqlite.prepare(
        'insert into events (day, sensor, event_id, session, ip, ts, type, data) values (?, ?, ?, ?, ?, ?, ?, ?)',
      ),
    };
    prepared.set(sqlite, found);
  }
  return found;
}

/**
 * Inserts de-duplication keys; returns the indexes of `rows` that were new. On SQLite pass the raw
 * handle (the caller's transaction is on that same connection); elsewhere multi-row statements.
 */
export async function insertEvidenceIds(
  tx: DbExecutor,
  sqlite: BetterSqlite3.Database | null,
  rows: readonly EvidenceIdRow[],
): Promise<number[]> {
  const fresh: number[] = [];
  if (sqlite) {
    const statement = statements(sqlite).evidenceId;
    rows.forEach((row, index) => {
      if (statement.run(row.source, row.id, row.ip).changes === 1) fresh.push(index);
    });
    return fresh;
  }
  for (let start = 0; start < rows.length; start += ROWS_PER_STATEMENT) {
    const part = rows.slice(start, start + ROWS_PER_STATEMENT);
    const inserted = await tx
      .insertInto('evidence_ids')
      .values(part)
      .onConflict((oc) => oc.columns(['source', 'id']).doNothing())
      .returning(['source', 'id'])
      .execute();
    const keys = new Set(inserted.map((r) => `${r.source}\u0000${r.id}`));
    part.forEach((row, offset) => {
      if (keys.has(`${row.source}\u0000${row.id}`)) fresh.push(start + offset);
    });
  }
  return fresh;
}

/** Stores raw events (SPEC §6 raw telemetry). Callers pass only events evidence_ids admitted as new. */
export async function insertEvents(
  tx: DbExecutor,
  sqlite: BetterSqlite3.Database | null,
  rows: readonly EventsTable[],
): Promise<void> {
  if (sqlite) {
    const statement = statements(sqlite).event;
    for (const r of rows) statement.run(r.day, r.sensor, r.event_id, r.session, r.ip, r.ts, r.type, r.data);
    return;
  }
  for (let start = 0; start < rows.length; start += ROWS_PER_STATEMENT) {
    await tx
      .insertInto('events')
      .values(rows.slice(start, start + ROWS_PER_STATEMENT))
      .execute();
  }
}

/** A change to one day's count of one threshold primitive of an `acrossSessions` behaviour (decision 0605). */
export interface AuthWindowDelta {
  ip: string;
  behavior: string;
  day: number;
  primitive: string;
  delta: number;
}

export const authWindowKey = (ip: string, behavior: string, day: number) =>
  `${ip}\u0000${behavior}\u0000${day}`;

/**
 * Adds the deltas to `sensor_auth_windows`, then reads back every primitive count of each window
 * (ip, behavior, day) touched: window key (authWindowKey) → primitive → count after the change.
 */
export async function addAuthWindows(
  tx: DbExecutor,
  sqlite: BetterSqlite3.Database | null,
  rows: readonly AuthWindowDelta[],
): Promise<Map<string, Map<string, number>>> {
  const windows = new Map<string, { ip: string; behavior: string; day: number }>();
  for (const row of rows) windows.set(authWindowKey(row.ip, row.behavior, row.day), row);
  const out = new Map<string, Map<string, number>>();
  if (sqlite) {
    const add = sqliteStatement(
      sqlite,
      'insert into sensor_auth_windows (ip, behavior, day, primitive, count) values (?, ?, ?, ?, ?) on conflict (ip, behavior, day, primitive) do update set count = sensor_auth_windows.count + excluded.count',
    );
    for (const r of rows) add.run(r.ip, r.behavior, r.day, r.primitive, r.delta);
    const read = sqliteStatement(
      sqlite,
      'select primitive, count from sensor_auth_windows where ip = ? and behavior = ? and day = ?',
    );
    for (const [key, w] of windows) {
      const counts = new Map<string, number>();
      for (const row of read.all(w.ip, w.behavior, w.day) as { primitive: string; count: number }[]) {
        counts.set(row.primitive, Number(row.count));
      }
      out.set(key, counts);
    }
    return out;
  }
  for (let start = 0; start < rows.length; start += ROWS_PER_STATEMENT) {
    await tx
      .insertInto('sensor_auth_windows')
      .values(
        rows.slice(start, start + ROWS_PER_STATEMENT).map((r) => ({
          ip: r.ip,
          behavior: r.behavior,
          day: r.day,
          primitive: r.primitive,
          count: r.delta,
        })),
      )
      .onConflict((oc) =>
        oc
          .columns(['ip', 'behavior', 'day', 'primitive'])
          .doUpdateSet({ count: sql<number>`sensor_auth_windows.count + excluded.count` }),
      )
      .execute();
  }
  for (const [key, w] of windows) {
    const found = await tx
      .selectFrom('sensor_auth_windows')
      .select(['primitive', 'count'])
      .where('ip', '=', w.ip)
      .where('behavior', '=', w.behavior)
      .where('day', '=', w.day)
      .execute();
    out.set(key, new Map(found.map((row) => [row.primitive, Number(row.count)])));
  }
  return out;
}
