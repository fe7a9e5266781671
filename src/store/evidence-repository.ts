// Bulk writes of sensor evidence: de-duplication keys and raw events, batched per dialect (ingest hot path).
import type BetterSqlite3 from 'better-sqlite3';
import { sql } from 'kysely';
import type { DbExecutor, Dialect, EventsTable } from './database.js';
import { sqliteStatement } from './sqlite-rows.js';

export { sqliteStatement, sqliteUpsertRows } from './sqlite-rows.js';

export interface EvidenceIdRow {
  source: string;
  id: string;
  ip: string;
}

const ROWS_PER_STATEMENT = 200;
const KEYS_PER_LOOKUP = 500;

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

/**
 * SQLite: inserts the de-duplication keys of `events` (source = sensor) on the raw handle, inside the
 * caller's transaction, and returns the events that were new — `insertEvidenceIds` without a row object
 * per event.
 */
export function insertSensorEvidenceIdsSqlite(
  sqlite: BetterSqlite3.Database,
  events: readonly { sensor: string; id: string; srcIp: string }[],
): number[] {
  const statement = statements(sqlite).evidenceId;
  const fresh: number[] = [];
  for (let i = 0; i < events.length; i++) {
    const e = events[i] as { sensor: string; id: string; srcIp: string };
    if (statement.run(e.sensor, e.id, e.srcIp).changes === 1) fresh.push(i);
  }
  return fresh;
}

/** SQLite: `insertEvents` for one session's events, columns passed straight to the prepared statement. */
export function insertSessionEventsSqlite<
  E extends { sensor: string; id: string; session: string; ts: number; type: string },
>(
  sqlite: BetterSqlite3.Database,
  ip: string,
  events: readonly E[],
  day: (ts: number) => number,
  data: (event: E) => string,
): void {
  const statement = statements(sqlite).event;
  for (const e of events) statement.run(day(e.ts), e.sensor, e.id, e.session, ip, e.ts, e.type, data(e));
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

/** A row of `pending_sessions` (decision 0630); `delta` is the service's JSON. */
export interface PendingRow {
  sensor: string;
  session: string;
  ip: string;
  now: number;
  delta: string;
}

/**
 * Locks sessions for the rest of the transaction on PostgreSQL, in ascending lock-key order, each once:
 * ingest (merging pending rows) and the aggregator (clearing them) take the same locks first, so neither
 * loses the other's update. SQLite's write lock already covers them.
 */
export async function lockSessions(
  tx: DbExecutor,
  dialect: Dialect,
  sessions: Iterable<{ sensor: string; session: string }>,
): Promise<void> {
  if (dialect !== 'postgres') return;
  // PostgreSQL text holds no NUL: the sensor's length keeps the key unambiguous instead.
  const keys = [...sessions].map((s) => `${s.sensor.length}:${s.sensor}:${s.session}`);
  if (keys.length === 0) return;
  await sql`select count(pg_advisory_xact_lock(k)) from (
    select distinct hashtextextended(x, 7463) as k from unnest(${keys}::text[]) as x order by k
  ) as ordered`.execute(tx);
}

/** Pending rows of the given sessions (`sensor` → session names). */
export async function readPending(
  tx: DbExecutor,
  sqlite: BetterSqlite3.Database | null,
  sessions: ReadonlyMap<string, readonly string[]>,
): Promise<PendingRow[]> {
  const out: PendingRow[] = [];
  if (sqlite) {
    const read = sqliteStatement(
      sqlite,
      'select sensor, session, ip, now, delta from pending_sessions where sensor = ? and session = ?',
    );
    for (const [sensor, names] of sessions) {
      for (const name of names) {
        const row = read.get(sensor, name) as PendingRow | undefined;
        if (row) out.push({ ...row, now: Number(row.now) });
      }
    }
    return out;
  }
  for (const [sensor, names] of sessions) {
    for (let start = 0; start < names.length; start += KEYS_PER_LOOKUP) {
      const rows = await tx
        .selectFrom('pending_sessions')
        .select(['sensor', 'session', 'ip', 'now', 'delta'])
        .where('sensor', '=', sensor)
        .where('session', 'in', names.slice(start, start + KEYS_PER_LOOKUP))
        .execute();
      for (const row of rows) out.push({ ...row, now: Number(row.now) });
    }
  }
  return out;
}

/** Up to `limit` pending rows, in key order. */
export async function nextPending(
  tx: DbExecutor,
  sqlite: BetterSqlite3.Database | null,
  limit: number,
): Promise<PendingRow[]> {
  if (sqlite) {
    const rows = sqliteStatement(
      sqlite,
      'select sensor, session, ip, now, delta from pending_sessions order by sensor, session limit ?',
    ).all(limit) as PendingRow[];
    return rows.map((row) => ({ ...row, now: Number(row.now) }));
  }
  const rows = await tx
    .selectFrom('pending_sessions')
    .select(['sensor', 'session', 'ip', 'now', 'delta'])
    .orderBy('sensor')
    .orderBy('session')
    .limit(limit)
    .execute();
  return rows.map((row) => ({ ...row, now: Number(row.now) }));
}

/** Writes pending rows (already merged with any stored one); a stored row keeps its `ip`. */
export async function writePending(
  tx: DbExecutor,
  sqlite: BetterSqlite3.Database | null,
  rows: readonly PendingRow[],
): Promise<void> {
  if (sqlite) {
    const write = sqliteStatement(
      sqlite,
      'insert into pending_sessions (sensor, session, ip, now, delta) values (?, ?, ?, ?, ?) on conflict (sensor, session) do update set now = excluded.now, delta = excluded.delta',
    );
    for (const r of rows) write.run(r.sensor, r.session, r.ip, r.now, r.delta);
    return;
  }
  for (let start = 0; start < rows.length; start += ROWS_PER_STATEMENT) {
    await tx
      .insertInto('pending_sessions')
      .values(rows.slice(start, start + ROWS_PER_STATEMENT))
      .onConflict((oc) =>
        oc.columns(['sensor', 'session']).doUpdateSet({
          now: sql<number>`excluded.now`,
          delta: sql<string>`excluded.delta`,
        }),
      )
      .execute();
  }
}

/** Clears the pending marks of the given sessions. */
export async function deletePending(
  tx: DbExecutor,
  sqlite: BetterSqlite3.Database | null,
  sessions: ReadonlyMap<string, readonly string[]>,
): Promise<void> {
  if (sqlite) {
    const remove = sqliteStatement(sqlite, 'delete from pending_sessions where sensor = ? and session = ?');
    for (const [sensor, names] of sessions) for (const name of names) remove.run(sensor, name);
    return;
  }
  for (const [sensor, names] of sessions) {
    for (let start = 0; start < names.length; start += KEYS_PER_LOOKUP) {
      await tx
        .deleteFrom('pending_sessions')
        .where('sensor', '=', sensor)
        .where('session', 'in', names.slice(start, start + KEYS_PER_LOOKUP))
        .execute();
    }
  }
}

/** A sensor batch accepted and not yet expanded (decision 0855). */
export interface PendingEventBatchRow {
  id: number;
  now: number;
  events: string;
}

/** SQLite (decision 0855): stores one accepted batch's new events as one row, inside the caller's transaction. */
export function insertPendingEventBatchSqlite(
  sqlite: BetterSqlite3.Database,
  now: number,
  events: string,
): void {
  sqliteStatement(sqlite, 'insert into pending_event_batches (now, events) values (?, ?)').run(now, events);
}

/** SQLite: the oldest pending batches, in acceptance order, until their text passes `maxChars` (at least one). */
export function readPendingEventBatchesSqlite(
  sqlite: BetterSqlite3.Database,
  maxChars: number,
): PendingEventBatchRow[] {
  const rows: PendingEventBatchRow[] = [];
  let chars = 0;
  for (const row of sqliteStatement(
    sqlite,
    'select id, now, events from pending_event_batches order by id',
  ).iterate() as IterableIterator<PendingEventBatchRow>) {
    rows.push({ id: Number(row.id), now: Number(row.now), events: row.events });
    chars += row.events.length;
    if (chars >= maxChars) break;
  }
  return rows;
}

/** SQLite: replaces a partly expanded batch's events with the sessions still to expand. */
export function updatePendingEventBatchSqlite(
  sqlite: BetterSqlite3.Database,
  id: number,
  events: string,
): void {
  sqliteStatement(sqlite, 'update pending_event_batches set events = ? where id = ?').run(events, id);
}

/** SQLite: removes expanded batches (every id up to `lastId`). */
export function deletePendingEventBatchesSqlite(sqlite: BetterSqlite3.Database, lastId: number): void {
  sqliteStatement(sqlite, 'delete from pending_event_batches where id <= ?').run(lastId);
}

/** Batches accepted and not yet expanded (any dialect; only SQLite writes them). */
export async function countPendingEventBatches(db: DbExecutor): Promise<number> {
  const row = await db
    .selectFrom('pending_event_batches')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}
