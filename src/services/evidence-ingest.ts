// Sensor evidence ingest (SPEC §1, §7): de-duplicate events, classify sessions, update per-IP aggregates incrementally, rescore.

import { randomUUID } from 'node:crypto';
import type BetterSqlite3 from 'better-sqlite3';
import { sql } from 'kysely';
import { windowThresholds } from '../core/detection/catalog.js';
import type { CompiledCatalog } from '../core/detection/classify.js';
import { classifySession, matchEventPrimitives } from '../core/detection/classify.js';
import type { SensorEvent } from '../core/events.js';
import { type IpAddress, parseIp } from '../core/ip.js';
import { DAY_MS, utcDay } from '../core/time.js';
import { withPostgresAdvisoryLock } from '../store/advisory-lock.js';
import type { DbExecutor, Dialect, SensorSessionsTable } from '../store/database.js';
import {
  type AuthWindowDelta,
  addAuthWindows,
  authWindowKey,
  deletePending,
  deletePendingEventBatchesSqlite,
  insertEvents,
  insertEvidenceIds,
  insertPendingEventBatchSqlite,
  insertSensorEvidenceIdsSqlite,
  insertSessionEventsSqlite,
  lockSessions,
  nextPending,
  type PendingRow,
  readPending,
  readPendingEventBatchesSqlite,
  sqliteStatement,
  sqliteUpsertRows,
  updatePendingEventBatchSqlite,
  writePending,
} from '../store/evidence-repository.js';
import { chunks, lockIps, upsertAdd } from '../store/report-batch-repository.js';
import { earlier, fillGeoColumns, later, newReputationRow } from '../store/reputation-repository.js';
import type { Store } from '../store/store.js';
import { DrainRunner, type DrainRunnerOptions, yieldToRequests } from './drain-runner.js';
import { eventData } from './event-data.js';
import { normaliseEmail } from './evidence-read.js';
import { type GeoLookup, NO_GEO } from './geo-lookup.js';
import type { ReputationScorer } from './reputation-scoring.js';

/**
 * What one session has contributed to the aggregates so far. A later batch with more events of the same
 * session reclassifies the whole session and applies only the difference, so any split or order of the
 * same events ends in the same aggregates (SPEC §7 at-least-once delivery).
 */
export interface SessionState {
  /** Day (UTC) the session is counted on in `reputation_days`: the day of its earliest event. */
  day: number;
  protocols: string[];
  primitives: Record<string, number>;
  behaviors: string[];
  /** `${protocol}\u0000${username}` pairs tried in the session. */
  usernames: string[];
  /**
   * What the session adds to cross-session windows (decision 0605): `${behavior}\u0000${primitive}\u0000${day}`
   * → events, for each `acrossSessions` behaviour the session does not show itself. Absent when empty.
   */
  windows?: Record<string, number>;
}

/** An `acrossSessions` behaviour and the thresholds judged per UTC day over the IP's sessions. */
interface WindowedBehavior {
  behavior: string;
  thresholds: { primitive: string; min: number }[];
}

export interface IngestOutcome {
  /** Events stored for the first time. */
  accepted: number;
  /** Events already stored earlier (same sensor and id), or repeated within the batch. */
  duplicates: number;
  /** Sessions with new events, marked pending for the aggregator. */
  sessions: number;
}

/**
 * What a session's new events add by themselves, kept in `pending_sessions` until aggregated (decision
 * 0630). Merging is commutative, so any split or order of the same events gives the same delta.
 */
interface PendingDelta {
  /** Events. */
  n: number;
  /** Earliest and latest event timestamps. */
  first: number;
  last: number;
  /** Protocol → events. */
  p: Record<string, number>;
  /** UTC day → events. */
  d: Record<string, number>;
  /** `${protocol}\u0000${username}` → [first ts, last ts]. */
  u: Record<string, [number, number]>;
  /** `${protocol}\u0000${recipient}` → [messages, first ts, last ts]. */
  r: Record<string, [number, number, number]>;
  /**
   * The ingest that last wrote the mark (a process token and a counter; decision 0631). A merge writes
   * its own, so a fresh-session cache entry is used only while the mark is exactly the one it created.
   */
  o?: string;
}

function newDelta(ts: number): PendingDelta {
  return { n: 0, first: ts, last: ts, p: {}, d: {}, u: {}, r: {} };
}

// The UTC day of the last timestamp seen, as text (consecutive events nearly always share it).
let dayStart = 0;
let dayEnd = 0;
let dayText = '';

function dayKey(ts: number): string {
  if (ts >= dayStart && ts < dayEnd) return dayText;
  const day = utcDay(ts);
  dayStart = day * DAY_MS;
  dayEnd = dayStart + DAY_MS;
  dayText = String(day);
  return dayText;
}

function addEvent(delta: PendingDelta, event: SensorEvent): void {
  delta.n += 1;
  delta.first = Math.min(delta.first, event.ts);
  delta.last = Math.max(delta.last, event.ts);
  delta.p[event.protocol] = (delta.p[event.protocol] ?? 0) + 1;
  const day = dayKey(event.ts);
  delta.d[day] = (delta.d[day] ?? 0) + 1;
  if (event.type === 'auth' && event.username !== '') {
    const pair = `${event.protocol}\u0000${event.username}`;
    const range = delta.u[pair];
    delta.u[pair] = range
      ? [Math.min(range[0], event.ts), Math.max(range[1], event.ts)]
      : [event.ts, event.ts];
  }
  const recipient = smtpRecipient(event);
  if (recipient !== null) {
    const pair = `${event.protocol}\u0000${recipient}`;
    const seen = delta.r[pair];
    delta.r[pair] = seen
      ? [seen[0] + 1, Math.min(seen[1], event.ts), Math.max(seen[2], event.ts)]
      : [1, event.ts, event.ts];
  }
}

function mergeDelta(into: PendingDelta, from: PendingDelta): void {
  into.n += from.n;
  into.first = Math.min(into.first, from.first);
  into.last = Math.max(into.last, from.last);
  for (const [key, count] of Object.entries(from.p)) into.p[key] = (into.p[key] ?? 0) + count;
  for (const [key, count] of Object.entries(from.d)) into.d[key] = (into.d[key] ?? 0) + count;
  for (const [key, [first, last]] of Object.entries(from.u)) {
    const range = into.u[key];
    into.u[key] = range ? [Math.min(range[0], first), Math.max(range[1], last)] : [first, last];
  }
  for (const [key, [count, first, last]] of Object.entries(from.r)) {
    const seen = into.r[key];
    into.r[key] = seen
      ? [seen[0] + count, Math.min(seen[1], first), Math.max(seen[2], last)]
      : [count, first, last];
  }
}

/** sensor → session names, each once. */
function sessionsBySensor(rows: Iterable<{ sensor: string; session: string }>): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const seen = new Set<string>();
  for (const row of rows) {
    const key = sessionKey(row.sensor, row.session);
    if (seen.has(key)) continue;
    seen.add(key);
    const names = out.get(row.sensor);
    if (names) names.push(row.session);
    else out.set(row.sensor, [row.session]);
  }
  return out;
}

interface Counts {
  sessions: number;
  events: number;
}

interface IpDelta {
  ip: IpAddress;
  firstTs: number;
  lastTs: number;
  sessions: number;
  events: number;
  protocols: Map<string, Counts>;
  primitives: Map<string, number>;
  behaviors: Map<string, number>;
  days: Map<number, Counts>;
}

interface SeenRange {
  count: number;
  first: number;
  last: number;
}

// Rows per multi-row statement: few round trips, and a bounded set of SQL texts for the statement cache.
const ROWS_PER_STATEMENT = 200;
const KEYS_PER_LOOKUP = 500;
/** Sessions aggregated per transaction: the SQLite write lock is held for one chunk at a time. */
const SESSIONS_PER_CHUNK = 1_000;
/** Batch text read per expansion transaction (decision 0855): about one full 5,000-event batch. */
const EXPAND_CHARS = 1_000_000;
/**
 * Events expanded (and aggregated) per transaction, in whole sessions: the synchronous work every other
 * request on the process waits for (a full 5,000-event batch took ~0.1-0.3 s).
 */
export const EXPAND_EVENTS = 2_500;
/** Bounds one drain (a producer faster than the aggregator forever would otherwise keep it going). */
const MAX_CHUNKS_PER_DRAIN = 1_000_000;
const AGGREGATOR_LOCK = 'evidence-aggregator';
/**
 * Bound of the fresh-session cache (events held): sessions first seen by this process's ingest keep their
 * events in memory until aggregated, so the aggregator need not read them back (decision 0631).
 */
const FRESH_CACHE_EVENTS = 100_000;
const LOCK_ATTEMPTS = 12_000;
const LOCK_RETRY_MS = 50;
const RCPT = /^\s*rcpt\s+to\s*:\s*<?\s*([^<>\s]+@[^<>\s]+?)\s*>?\s*(?:\s.*)?$/i;

function bump<K>(map: Map<K, number>, key: K, by: number): void {
  map.set(key, (map.get(key) ?? 0) + by);
}

function bumpCounts<K>(map: Map<K, Counts>, key: K, sessions: number, events: number): void {
  const entry = map.get(key);
  if (entry) {
    entry.sessions += sessions;
    entry.events += events;
  } else map.set(key, { sessions, events });
}

function bumpRange(map: Map<string, SeenRange>, key: string, count: number, ts: number): void {
  const entry = map.get(key);
  if (entry) {
    entry.count += count;
    entry.first = Math.min(entry.first, ts);
    entry.last = Math.max(entry.last, ts);
  } else map.set(key, { count, first: ts, last: ts });
}

const sessionKey = (sensor: string, session: string) => `${sensor}\u0000${session}`;

/** The SMTP recipient a command names (`RCPT TO:<a@b>`), lower-cased, or null. */
export function smtpRecipient(event: SensorEvent): string | null {
  if (event.type !== 'command' || event.protocol !== 'smtp') return null;
  const match = RCPT.exec(event.command);
  return match?.[1] ? normaliseEmail(match[1]) : null;
}

/** A raw event row; `data` is `eventData` (or, from versions before decision 0606, the whole event). */
interface StoredEventRow {
  event_id: string;
  session: string;
  ts: number | string;
  type: string;
  data: string;
}

function storedEvent(sensor: string, row: StoredEventRow): SensorEvent {
  return {
    ...(JSON.parse(row.data) as object),
    id: row.event_id,
    sensor,
    session: row.session,
    ts: Number(row.ts),
    type: row.type,
  } as SensorEvent;
}

function stateOf(
  events: readonly SensorEvent[],
  catalog: CompiledCatalog,
  windowed: readonly WindowedBehavior[],
): SessionState {
  const classification = classifySession(events, catalog);
  const protocols = new Set<string>();
  const usernames = new Set<string>();
  let first = Number.POSITIVE_INFINITY;
  let last = Number.NEGATIVE_INFINITY;
  for (const event of events) {
    protocols.add(event.protocol);
    if (event.ts < first) first = event.ts;
    if (event.ts > last) last = event.ts;
    if (event.type === 'auth' && event.username !== '')
      usernames.add(`${event.protocol}\u0000${event.username}`);
  }
  const state: SessionState = {
    day: utcDay(first),
    protocols: [...protocols].sort(),
    primitives: Object.fromEntries(classification.primitives),
    behaviors: [...classification.behaviors.keys()].sort(),
    usernames: [...usernames].sort(),
  };
  // Cross-session windows (decision 0605): the session's threshold events, by UTC day, for every
  // acrossSessions behaviour it does not show by itself.
  const windows = new Map<string, number>();
  const oneDay = utcDay(first) === utcDay(last);
  let perEvent: string[][] | null = null;
  for (const { behavior, thresholds } of windowed) {
    if (classification.behaviors.has(behavior)) continue;
    for (const { primitive } of thresholds) {
      const count = classification.primitives.get(primitive) ?? 0;
      if (count === 0) continue;
      if (oneDay) {
        windows.set(`${behavior}\u0000${primitive}\u0000${state.day}`, count);
        continue;
      }
      perEvent ??= events.map((event) => matchEventPrimitives(event, catalog));
      events.forEach((event, index) => {
        if (!perEvent?.[index]?.includes(primitive)) return;
        const key = `${behavior}\u0000${primitive}\u0000${utcDay(event.ts)}`;
        windows.set(key, (windows.get(key) ?? 0) + 1);
      });
    }
  }
  if (windows.size > 0) state.windows = Object.fromEntries([...windows].sort(([a], [b]) => (a < b ? -1 : 1)));
  return state;
}

const EMPTY_STATE: SessionState = { day: 0, protocols: [], primitives: {}, behaviors: [], usernames: [] };

function parseState(text: string): SessionState {
  const parsed = JSON.parse(text) as Partial<SessionState>;
  return {
    day: parsed.day ?? 0,
    protocols: parsed.protocols ?? [],
    primitives: parsed.primitives ?? {},
    behaviors: parsed.behaviors ?? [],
    usernames: parsed.usernames ?? [],
    windows: parsed.windows ?? {},
  };
}

/** One session's new events in a batch, with the address its raw rows and mark carry. */
interface SessionGroup {
  sensor: string;
  session: string;
  /** The srcIp of the session's first event in the batch (new or not). */
  ip: string;
  events: SensorEvent[];
}

/**
 * SQLite, inside the caller's transaction: one pass over the batch de-duplicates (a key insert fails for
 * an event stored before or earlier in the batch) and groups the new events by session, in order of
 * first appearance. Groups without a new event are left out.
 */
function groupFreshSqlite(
  sqlite: BetterSqlite3.Database,
  input: readonly SensorEvent[],
): { groups: SessionGroup[]; accepted: number } {
  const groups = new Map<string, SessionGroup>();
  const fresh = insertSensorEvidenceIdsSqlite(sqlite, input);
  let next = 0;
  // A session's events mostly arrive together: the previous event's group is checked first.
  let group: SessionGroup | undefined;
  for (let i = 0; i < input.length && next < fresh.length; i++) {
    const event = input[i] as SensorEvent;
    if (group === undefined || group.session !== event.session || group.sensor !== event.sensor) {
      const key = sessionKey(event.sensor, event.session);
      group = groups.get(key);
      if (!group) {
        group = { sensor: event.sensor, session: event.session, ip: event.srcIp, events: [] };
        groups.set(key, group);
      }
    }
    if (fresh[next] === i) {
      group.events.push(event);
      next++;
    }
  }
  const out: SessionGroup[] = [];
  for (const g of groups.values()) if (g.events.length > 0) out.push(g);
  return { groups: out, accepted: fresh.length };
}

export class EvidenceService {
  private readonly windowed: WindowedBehavior[];
  /** Runs `drainAll`, one drain at a time, in the background once started (decision 0630). */
  private readonly runner = new DrainRunner(() => this.drainAll(), { quietMs: 50, maxLagMs: 1_000 });
  /**
   * Events of sessions that were new when this process stored them (no pending mark, no stored raw event
   * of the session), by session key, until aggregated. Used only where it provably is the whole stored
   * session (see aggregateChunk); oldest entries are dropped beyond FRESH_CACHE_EVENTS.
   */
  private readonly fresh = new Map<string, { token: string; events: readonly SensorEvent[] }>();
  private freshEvents = 0;
  private readonly processToken = randomUUID();
  private batches = 0;

  constructor(
    private readonly store: Store,
    private readonly scorer: ReputationScorer,
    private readonly catalog: CompiledCatalog,
    private readonly geo: GeoLookup = NO_GEO,
  ) {
    this.windowed = catalog.catalog.behaviors
      .filter((behavior) => behavior.acrossSessions === true)
      .map((behavior) => ({ behavior: behavior.name, thresholds: windowThresholds(behavior) }));
  }

  /**
   * Stores validated events in one transaction and answers: events already stored (same `sensor` and
   * `id`, however long ago) change nothing; the new ones are stored raw and their sessions marked pending
   * with what the new events add by themselves (decision 0630). The aggregator (`drain`, woken after each
   * ingest when started) reclassifies those sessions and updates the IPs' aggregates and scores. Events
   * keep their own timestamps; the caller decides what age is acceptable (the sensor endpoint, not importers).
   */
  async ingest(events: readonly SensorEvent[], now: number): Promise<IngestOutcome> {
    if (events.length === 0) return { accepted: 0, duplicates: 0, sessions: 0 };
    const sqlite = this.store.sqlite;
    if (sqlite) {
      // SQLite (decision 0855): de-duplicate, store the new events as one pending batch, answer; the
      // aggregator writes their raw rows and marks (`expandBatches`) before it aggregates.
      const outcome = await this.store.transaction(async () => {
        const { groups, accepted } = groupFreshSqlite(sqlite, events);
        if (accepted > 0) insertPendingEventBatchSqlite(sqlite, now, JSON.stringify(groups));
        return { accepted, duplicates: events.length - accepted, sessions: groups.length };
      });
      if (outcome.accepted > 0) this.runner.wake();
      return outcome;
    }
    const newSessions = new Map<string, { token: string; events: SensorEvent[] }>();
    const outcome = await this.store.transaction((tx) =>
      this.ingestIn(tx, this.store.dialect, events, now, newSessions),
    );
    // Only once committed: a rolled-back batch leaves nothing in the cache.
    for (const [key, entry] of newSessions) this.remember(key, entry);
    if (outcome.accepted > 0) this.runner.wake();
    return outcome;
  }

  /**
   * Bulk import: stores the batch like `ingest` and, on SQLite, aggregates the pending sessions in the same
   * transaction (one commit instead of one for the batch and one per aggregated chunk; the batch's new
   * sessions come from the fresh-session cache). Then drains whatever else is pending. The end state is
   * the same as `ingest` followed by `drain` (the same code on the same marks). PostgreSQL: exactly that.
   */
  async ingestAndAggregate(events: readonly SensorEvent[], now: number): Promise<IngestOutcome> {
    if (this.store.sqlite === null) {
      const outcome = await this.ingest(events, now);
      await this.drain();
      return outcome;
    }
    if (events.length === 0) return { accepted: 0, duplicates: 0, sessions: 0 };
    const newSessions = new Map<string, { token: string; events: SensorEvent[] }>();
    const touched: string[] = [];
    let outcome: IngestOutcome;
    try {
      outcome = await this.store.transaction(async (tx) => {
        const stored = await this.ingestIn(tx, this.store.dialect, events, now, newSessions);
        for (const [key, entry] of newSessions) this.remember(key, entry);
        // SQLite's write lock (held since BEGIN IMMEDIATE) makes this transaction the only aggregator.
        await this.aggregateChunk(
          tx,
          this.store.dialect,
          touched,
          Math.max(SESSIONS_PER_CHUNK, stored.sessions),
        );
        return stored;
      });
    } catch (error) {
      for (const key of newSessions.keys()) this.forget(key);
      throw error;
    }
    this.scorer.committed(touched);
    await this.drain();
    return outcome;
  }

  private remember(key: string, entry: { token: string; events: readonly SensorEvent[] }): void {
    if (entry.events.length > FRESH_CACHE_EVENTS) return;
    this.forget(key);
    this.fresh.set(key, entry);
    this.freshEvents += entry.events.length;
    for (const [oldest, { events }] of this.fresh) {
      if (this.freshEvents <= FRESH_CACHE_EVENTS) break;
      this.fresh.delete(oldest);
      this.freshEvents -= events.length;
    }
  }

  private forget(key: string): { token: string; events: readonly SensorEvent[] } | undefined {
    const entry = this.fresh.get(key);
    if (entry) {
      this.fresh.delete(key);
      this.freshEvents -= entry.events.length;
    }
    return entry;
  }

  /** Sessions held by the fresh-session cache (tests). */
  get cachedSessions(): number {
    return this.fresh.size;
  }

  private async ingestIn(
    tx: DbExecutor,
    dialect: Dialect,
    input: readonly SensorEvent[],
    now: number,
    /** Filled with the events of sessions this batch creates (SQLite: see ingestSqlite). */
    newSessions: Map<string, { token: string; events: SensorEvent[] }>,
  ): Promise<IngestOutcome> {
    const sqlite = this.store.sqlite;
    if (sqlite) return this.ingestSqlite(sqlite, input, now, newSessions);
    const sessionIp = new Map<string, string>();
    const touched: SensorEvent[] = [];
    for (const event of input) {
      const key = sessionKey(event.sensor, event.session);
      if (sessionIp.has(key)) continue;
      sessionIp.set(key, event.srcIp);
      touched.push(event);
    }
    // Serialise with other writers of the same sessions' pending rows (PostgreSQL; one global order).
    await lockSessions(tx, dialect, touched);

    // 1. De-duplicate: within the batch, then against every event ever accepted.
    const unique = new Map<string, SensorEvent>();
    for (const event of input) {
      const key = sessionKey(event.sensor, event.id);
      if (!unique.has(key)) unique.set(key, event);
    }
    const candidates = [...unique.values()];
    const freshIndexes = await insertEvidenceIds(
      tx,
      null,
      candidates.map((e) => ({ source: e.sensor, id: e.id, ip: e.srcIp })),
    );
    const fresh = freshIndexes.map((i) => candidates[i]).filter((e): e is SensorEvent => e !== undefined);
    const duplicates = input.length - fresh.length;
    if (fresh.length === 0) return { accepted: 0, duplicates, sessions: 0 };

    // 2. Raw telemetry, day-keyed for retention (SPEC §6).
    await insertEvents(
      tx,
      null,
      fresh.map((e) => ({
        day: utcDay(e.ts),
        sensor: e.sensor,
        event_id: e.id,
        session: e.session,
        ip: sessionIp.get(sessionKey(e.sensor, e.session)) ?? e.srcIp,
        ts: e.ts,
        type: e.type,
        data: eventData(e),
      })),
    );

    // 3. Pending marks: what the new events add, merged into any mark not yet aggregated.
    const marks = new Map<string, { sensor: string; session: string; delta: PendingDelta }>();
    for (const event of fresh) {
      const key = sessionKey(event.sensor, event.session);
      let mark = marks.get(key);
      if (!mark) {
        mark = { sensor: event.sensor, session: event.session, delta: newDelta(event.ts) };
        marks.set(key, mark);
      }
      addEvent(mark.delta, event);
    }
    const stored = new Map<string, PendingRow>();
    for (const row of await readPending(tx, null, sessionsBySensor(marks.values()))) {
      stored.set(sessionKey(row.sensor, row.session), row);
    }
    const rows: PendingRow[] = [];
    for (const [key, mark] of marks) {
      const before = stored.get(key);
      if (before) mergeDelta(mark.delta, JSON.parse(before.delta) as PendingDelta);
      rows.push({
        sensor: mark.sensor,
        session: mark.session,
        ip: before?.ip ?? sessionIp.get(key) ?? '',
        now: Math.max(now, before?.now ?? now),
        delta: JSON.stringify(mark.delta),
      });
    }
    await writePending(tx, null, rows);
    return { accepted: fresh.length, duplicates, sessions: marks.size };
  }

  /**
   * `ingestIn` on SQLite, on the raw handle inside the caller's transaction: de-duplicates and groups
   * (`groupFreshSqlite`), then stores the groups (`storeGroupsSqlite`).
   */
  private ingestSqlite(
    sqlite: BetterSqlite3.Database,
    input: readonly SensorEvent[],
    now: number,
    newSessions: Map<string, { token: string; events: SensorEvent[] }>,
  ): IngestOutcome {
    const { groups, accepted } = groupFreshSqlite(sqlite, input);
    if (accepted === 0) return { accepted: 0, duplicates: input.length, sessions: 0 };
    const sessions = this.storeGroupsSqlite(sqlite, groups, now, newSessions);
    return { accepted, duplicates: input.length - accepted, sessions };
  }

  /**
   * The second half of SQLite ingest: per session the pending mark (inserted, or merged into one already
   * pending) and the raw rows. Sessions new to the store go to `newSessions` (fresh-session cache).
   * Returns how many sessions it stored events of.
   */
  private storeGroupsSqlite(
    sqlite: BetterSqlite3.Database,
    groups: readonly SessionGroup[],
    now: number,
    newSessions: Map<string, { token: string; events: SensorEvent[] }>,
  ): number {
    // Most marks are new: insert first, and read and merge only where one was already pending.
    const insert = sqliteStatement(
      sqlite,
      'insert into pending_sessions (sensor, session, ip, now, delta) values (?, ?, ?, ?, ?) on conflict (sensor, session) do nothing',
    );
    const read = sqliteStatement(
      sqlite,
      'select now, delta from pending_sessions where sensor = ? and session = ?',
    );
    const update = sqliteStatement(
      sqlite,
      'update pending_sessions set now = ?, delta = ? where sensor = ? and session = ?',
    );
    // Before the session's raw rows are written: does it have any stored event at all?
    const anyStored = sqliteStatement(
      sqlite,
      'select 1 from events where sensor = ? and session = ? limit 1',
    );
    const token = `${this.processToken}:${++this.batches}`;
    let sessions = 0;
    for (const group of groups) {
      const key = sessionKey(group.sensor, group.session);
      const events = group.events;
      const first = events[0];
      if (first === undefined) continue;
      sessions++;
      const delta = newDelta(first.ts);
      for (const event of events) addEvent(delta, event);
      delta.o = token;
      if (insert.run(group.sensor, group.session, group.ip, now, JSON.stringify(delta)).changes === 1) {
        // A new session: its events are exactly this batch's (fresh-session cache, decision 0631).
        if (anyStored.get(group.sensor, group.session) === undefined) newSessions.set(key, { token, events });
      } else {
        this.forget(key);
        newSessions.delete(key);
        const before = read.get(group.sensor, group.session) as { now: number; delta: string };
        mergeDelta(delta, JSON.parse(before.delta) as PendingDelta);
        update.run(Math.max(now, Number(before.now)), JSON.stringify(delta), group.sensor, group.session);
      }
      // Raw telemetry, day-keyed for retention (SPEC §6).
      insertSessionEventsSqlite(sqlite, group.ip, events, utcDay, eventData);
    }
    return sessions;
  }

  /**
   * Aggregates every pending session, in chunks of one transaction each; resolves when nothing stored
   * before the call is still pending. Calls made while a drain runs share the next one. On PostgreSQL one
   * process in the cluster aggregates at a time (advisory lock); the others wait for it.
   */
  drain(): Promise<void> {
    return this.runner.drain();
  }

  /**
   * Runs the aggregator in this process: now, after each ingest that stored something, and every
   * `intervalMs` (a safety net, e.g. for marks another process left behind). After an ingest it waits for
   * `quietMs` without further ingest, but never more than `maxLagMs` after the first one, so a burst of
   * batches is answered first and aggregated in larger chunks, and reputation still lags by at most about
   * `maxLagMs` plus the drain. Failures go to `onError` and are retried on the next wake or tick.
   */
  start(options: DrainRunnerOptions = {}): void {
    this.runner.start(options);
  }

  /** Stops the runner and waits for a drain in progress. */
  stop(): Promise<void> {
    return this.runner.stop();
  }

  private async drainAll(): Promise<void> {
    if (this.store.dialect !== 'postgres') {
      await this.drainChunks();
      return;
    }
    for (let attempt = 0; attempt < LOCK_ATTEMPTS; attempt++) {
      const run = await withPostgresAdvisoryLock(this.store.db, AGGREGATOR_LOCK, () => this.drainChunks());
      if (run.acquired) return;
      // Another process is aggregating: wait for it, then make sure nothing is left.
      await new Promise((resolve) => setTimeout(resolve, LOCK_RETRY_MS));
    }
    throw new Error('the evidence aggregator lock stayed taken');
  }

  private async drainChunks(): Promise<void> {
    await this.expandBatches(true);
    for (let round = 0; round < MAX_CHUNKS_PER_DRAIN; round++) {
      const touched: string[] = [];
      const done = await this.store.transaction((tx) => this.aggregateChunk(tx, this.store.dialect, touched));
      this.scorer.committed(touched);
      if (done === 0) return;
      // SQLite work is synchronous: let waiting requests in between two transactions.
      await yieldToRequests();
    }
  }

  /**
   * Writes the raw rows and pending marks of the sensor batches accepted so far without aggregating them
   * (what `drain` does first; SQLite, decision 0855 — elsewhere ingest wrote them already). For tests and
   * tools that look at the stored raw rows and marks.
   */
  expandPending(): Promise<void> {
    return this.expandBatches();
  }

  /**
   * SQLite (decision 0855): writes the raw rows and pending marks of every accepted sensor batch not yet
   * expanded, oldest first, up to EXPAND_CHARS of batch text per transaction, and deletes the batches in
   * the same transaction — exactly what `ingest` would have written at acceptance, in acceptance order.
   * With `aggregate`, each transaction then aggregates the sessions it marked (as `ingestAndAggregate`
   * does: one commit, the new sessions' events from memory).
   */
  private async expandBatches(aggregate = false): Promise<void> {
    const sqlite = this.store.sqlite;
    if (!sqlite) return;
    for (;;) {
      const newSessions = new Map<string, { token: string; events: SensorEvent[] }>();
      const touched: string[] = [];
      let expanded: boolean;
      try {
        expanded = await this.store.transaction(async (tx) => {
          const rows = readPendingEventBatchesSqlite(sqlite, EXPAND_CHARS);
          if (rows.length === 0) return false;
          // Whole sessions, oldest batch first, until about EXPAND_EVENTS events: a batch's remaining
          // sessions are written back to its row and taken by the next transaction.
          let sessions = 0;
          let events = 0;
          let done: number | null = null;
          for (const row of rows) {
            const groups = JSON.parse(row.events) as SessionGroup[];
            let take = 0;
            while (take < groups.length && (events === 0 || events < EXPAND_EVENTS)) {
              events += groups[take]?.events.length ?? 0;
              take++;
            }
            sessions += this.storeGroupsSqlite(
              sqlite,
              take === groups.length ? groups : groups.slice(0, take),
              row.now,
              newSessions,
            );
            if (take < groups.length) {
              updatePendingEventBatchSqlite(sqlite, row.id, JSON.stringify(groups.slice(take)));
              break;
            }
            done = row.id;
            if (events >= EXPAND_EVENTS) break;
          }
          if (done !== null) deletePendingEventBatchesSqlite(sqlite, done);
          if (aggregate) {
            for (const [key, entry] of newSessions) this.remember(key, entry);
            await this.aggregateChunk(
              tx,
              this.store.dialect,
              touched,
              Math.max(SESSIONS_PER_CHUNK, sessions),
            );
          }
          return true;
        });
      } catch (error) {
        if (aggregate) for (const key of newSessions.keys()) this.forget(key);
        throw error;
      }
      if (aggregate) this.scorer.committed(touched);
      // Only once committed: a rolled-back expansion leaves nothing in the cache.
      else for (const [key, entry] of newSessions) this.remember(key, entry);
      if (!expanded) return;
      await yieldToRequests();
    }
  }

  /** Aggregates up to SESSIONS_PER_CHUNK pending sessions and clears their marks; returns how many. */
  private async aggregateChunk(
    tx: DbExecutor,
    dialect: Dialect,
    touched: string[],
    limit = SESSIONS_PER_CHUNK,
  ): Promise<number> {
    const sqlite = this.store.sqlite;
    let pending = await nextPending(tx, sqlite, limit);
    if (pending.length === 0) return 0;
    const sessionsBySensorMap = sessionsBySensor(pending);
    if (dialect === 'postgres') {
      // Ingest may have merged into these marks since they were read: lock, then read them again.
      await lockSessions(tx, dialect, pending);
      pending = await readPending(tx, sqlite, sessionsBySensorMap);
    }
    const addedBy = new Map<string, PendingDelta>();
    for (const mark of pending) {
      addedBy.set(sessionKey(mark.sensor, mark.session), JSON.parse(mark.delta) as PendingDelta);
    }

    // Sessions aggregated before, and every stored event of the pending sessions.
    const existing = new Map<
      string,
      { ip: string; firstTs: number; lastTs: number; events: number; state: SessionState }
    >();
    if (sqlite) {
      const lookup = sqliteStatement(
        sqlite,
        'select ip, first_ts, last_ts, events, state from sensor_sessions where sensor = ? and session = ?',
      );
      for (const [sensor, names] of sessionsBySensorMap) {
        for (const session of names) {
          const row = lookup.get(sensor, session) as
            | { ip: string; first_ts: number; last_ts: number; events: number; state: string }
            | undefined;
          if (!row) continue;
          existing.set(sessionKey(sensor, session), {
            ip: row.ip,
            firstTs: Number(row.first_ts),
            lastTs: Number(row.last_ts),
            events: Number(row.events),
            state: parseState(row.state),
          });
        }
      }
    }
    for (const [sensor, names] of sqlite ? [] : sessionsBySensorMap) {
      for (const part of chunks(names, KEYS_PER_LOOKUP)) {
        const rows = await tx
          .selectFrom('sensor_sessions')
          .select(['session', 'ip', 'first_ts', 'last_ts', 'events', 'state'])
          .where('sensor', '=', sensor)
          .where('session', 'in', part)
          .execute();
        for (const row of rows) {
          existing.set(sessionKey(sensor, row.session), {
            ip: row.ip,
            firstTs: Number(row.first_ts),
            lastTs: Number(row.last_ts),
            events: Number(row.events),
            state: parseState(row.state),
          });
        }
      }
    }
    const stored = new Map<string, SensorEvent[]>();
    if (sqlite) {
      const lookup = sqliteStatement(
        sqlite,
        'select event_id, session, ts, type, data from events where sensor = ? and session = ?',
      );
      const count = sqliteStatement(
        sqlite,
        'select count(*) as n from events where sensor = ? and session = ?',
      );
      for (const mark of pending) {
        const key = sessionKey(mark.sensor, mark.session);
        // The fresh-session cache holds the whole stored session when: its events were the session's
        // first (checked at ingest), the session was never aggregated, the mark is still the one that
        // ingest wrote (token, event count: nothing merged since), and none was dropped (stored count).
        const cached = this.forget(key);
        const marked = addedBy.get(key);
        if (
          cached &&
          !existing.has(key) &&
          marked?.o === cached.token &&
          marked.n === cached.events.length &&
          (count.get(mark.sensor, mark.session) as { n: number }).n === cached.events.length
        ) {
          stored.set(key, cached.events as SensorEvent[]);
          continue;
        }
        const rows = lookup.all(mark.sensor, mark.session) as StoredEventRow[];
        stored.set(
          key,
          rows.map((row) => storedEvent(mark.sensor, row)),
        );
      }
    } else for (const mark of pending) this.forget(sessionKey(mark.sensor, mark.session));
    for (const [sensor, names] of sqlite ? [] : sessionsBySensorMap) {
      for (const part of chunks(names, KEYS_PER_LOOKUP)) {
        const rows = await tx
          .selectFrom('events')
          .select(['event_id', 'session', 'ts', 'type', 'data'])
          .where('sensor', '=', sensor)
          .where('session', 'in', part)
          .execute();
        for (const row of rows) {
          const key = sessionKey(sensor, row.session);
          const list = stored.get(key) ?? [];
          list.push(storedEvent(sensor, row));
          stored.set(key, list);
        }
      }
    }
    // Serialise with other writers of the same IPs (reports, retention), in one global order.
    await lockIps(
      tx,
      dialect,
      pending.map((row) => existing.get(sessionKey(row.sensor, row.session))?.ip ?? row.ip),
    );

    // Differences per IP, per username, per recipient.
    const deltas = new Map<string, IpDelta>();
    const usernames = new Map<string, SeenRange>();
    const recipients = new Map<string, SeenRange>();
    const sessionRows: SensorSessionsTable[] = [];
    // `${ip}\u0000${behavior}\u0000${primitive}\u0000${day}` → change of the window count.
    const windowDeltas = new Map<string, number>();
    let now = 0;
    for (const mark of pending) {
      now = Math.max(now, mark.now);
      const key = sessionKey(mark.sensor, mark.session);
      const all = stored.get(key) ?? [];
      // Raw events purged (retention) before they were aggregated: nothing left to classify.
      if (all.length === 0) continue;
      const added = addedBy.get(key) as PendingDelta;
      const before = existing.get(key);
      const ipText = before?.ip ?? mark.ip;
      const after = stateOf(all, this.catalog, this.windowed);
      const old = before?.state ?? EMPTY_STATE;

      let delta = deltas.get(ipText);
      if (!delta) {
        const parsed = parseIp(ipText);
        if (!parsed.ok) throw new Error(`stored session IP is not an address: ${ipText}`);
        delta = {
          ip: parsed.ip,
          firstTs: Number.POSITIVE_INFINITY,
          lastTs: 0,
          sessions: 0,
          events: 0,
          protocols: new Map(),
          primitives: new Map(),
          behaviors: new Map(),
          days: new Map(),
        };
        deltas.set(ipText, delta);
      }
      const firstTs = Math.min(before?.firstTs ?? Number.POSITIVE_INFINITY, added.first);
      const lastTs = Math.max(before?.lastTs ?? 0, added.last);
      for (const [protocol, count] of Object.entries(added.p))
        bumpCounts(delta.protocols, protocol, 0, count);
      for (const [day, count] of Object.entries(added.d)) bumpCounts(delta.days, Number(day), 0, count);
      for (const [pair, [first, last]] of Object.entries(added.u)) {
        bumpRange(usernames, pair, 0, first);
        bumpRange(usernames, pair, 0, last);
      }
      for (const [pair, [count, first, last]] of Object.entries(added.r)) {
        bumpRange(recipients, pair, count, first);
        bumpRange(recipients, pair, 0, last);
      }
      delta.firstTs = Math.min(delta.firstTs, firstTs);
      delta.lastTs = Math.max(delta.lastTs, lastTs);
      delta.events += added.n;
      if (!before) {
        delta.sessions += 1;
        bumpCounts(delta.days, after.day, 1, 0);
      } else if (before.state.day !== after.day) {
        bumpCounts(delta.days, before.state.day, -1, 0);
        bumpCounts(delta.days, after.day, 1, 0);
      }
      for (const protocol of after.protocols) {
        if (!old.protocols.includes(protocol)) bumpCounts(delta.protocols, protocol, 1, 0);
      }
      for (const protocol of old.protocols) {
        if (!after.protocols.includes(protocol)) bumpCounts(delta.protocols, protocol, -1, 0);
      }
      for (const [name, count] of Object.entries(after.primitives)) {
        const change = count - (old.primitives[name] ?? 0);
        if (change !== 0) bump(delta.primitives, name, change);
      }
      for (const [name, count] of Object.entries(old.primitives)) {
        if (after.primitives[name] === undefined) bump(delta.primitives, name, -count);
      }
      for (const name of after.behaviors) if (!old.behaviors.includes(name)) bump(delta.behaviors, name, 1);
      for (const name of old.behaviors) if (!after.behaviors.includes(name)) bump(delta.behaviors, name, -1);
      for (const [key, count] of Object.entries(after.windows ?? {})) {
        const [behavior, primitive, day] = key.split('\u0000') as [string, string, string];
        bump(windowDeltas, `${ipText}\u0000${behavior}\u0000${primitive}\u0000${day}`, count);
      }
      for (const [key, count] of Object.entries(old.windows ?? {})) {
        const [behavior, primitive, day] = key.split('\u0000') as [string, string, string];
        bump(windowDeltas, `${ipText}\u0000${behavior}\u0000${primitive}\u0000${day}`, -count);
      }
      const oldUsernames = new Set(old.usernames);
      for (const pair of after.usernames) {
        if (oldUsernames.has(pair)) continue;
        const range = usernames.get(pair);
        if (range) range.count += 1;
      }
      sessionRows.push({
        sensor: mark.sensor,
        session: mark.session,
        ip: ipText,
        first_ts: firstTs,
        last_ts: lastTs,
        events: (before?.events ?? 0) + added.n,
        state: JSON.stringify(after),
      });
    }

    // Writes: sessions, reputations, child aggregates, usernames, recipients.
    if (sqlite) {
      sqliteUpsertRows(
        sqlite,
        'sensor_sessions',
        ['sensor', 'session', 'ip', 'first_ts', 'last_ts', 'events', 'state'],
        ['sensor', 'session'],
        'first_ts = excluded.first_ts, last_ts = excluded.last_ts, events = excluded.events, state = excluded.state',
        sessionRows as unknown as Record<string, unknown>[],
      );
    }
    for (const part of chunks(sqlite ? [] : sessionRows, ROWS_PER_STATEMENT)) {
      await tx
        .insertInto('sensor_sessions')
        .values(part)
        .onConflict((oc) =>
          oc.columns(['sensor', 'session']).doUpdateSet({
            first_ts: sql<number>`excluded.first_ts`,
            last_ts: sql<number>`excluded.last_ts`,
            events: sql<number>`excluded.events`,
            state: sql<string>`excluded.state`,
          }),
        )
        .execute();
    }
    const ipDeltas = [...deltas.values()];
    for (const part of chunks(ipDeltas, ROWS_PER_STATEMENT)) {
      await tx
        .insertInto('reputations')
        .values(
          part.map((d) => ({
            ...newReputationRow(d.ip, d.firstTs, d.lastTs, now, this.geo.lookup(d.ip)),
            sessions: d.sessions,
            events: d.events,
            sensor_first_seen: d.firstTs,
            sensor_last_seen: d.lastTs,
          })),
        )
        .onConflict((oc) =>
          oc.column('ip').doUpdateSet({
            first_seen: earlier('first_seen'),
            last_seen: later('last_seen'),
            sessions: sql<number>`reputations.sessions + excluded.sessions`,
            events: sql<number>`reputations.events + excluded.events`,
            sensor_first_seen: sql<number>`case when reputations.sensor_first_seen is null or excluded.sensor_first_seen < reputations.sensor_first_seen then excluded.sensor_first_seen else reputations.sensor_first_seen end`,
            sensor_last_seen: sql<number>`case when reputations.sensor_last_seen is null or excluded.sensor_last_seen > reputations.sensor_last_seen then excluded.sensor_last_seen else reputations.sensor_last_seen end`,
            ...fillGeoColumns(),
          }),
        )
        .execute();
    }
    await this.applyWindows(tx, sqlite, windowDeltas, deltas);
    const protocolRows: { ip: string; protocol: string; sessions: number; events: number }[] = [];
    const behaviorRows: { ip: string; behavior: string; count: number }[] = [];
    const primitiveRows: { ip: string; primitive: string; count: number }[] = [];
    const dayRows: { ip: string; day: number; reports: number; sessions: number; events: number }[] = [];
    for (const d of ipDeltas) {
      const ip = d.ip.text;
      for (const [protocol, c] of d.protocols) {
        if (c.sessions !== 0 || c.events !== 0) protocolRows.push({ ip, protocol, ...c });
      }
      for (const [behavior, count] of d.behaviors)
        if (count !== 0) behaviorRows.push({ ip, behavior, count });
      for (const [primitive, count] of d.primitives)
        if (count !== 0) primitiveRows.push({ ip, primitive, count });
      for (const [day, c] of d.days) {
        if (c.sessions !== 0 || c.events !== 0) dayRows.push({ ip, day, reports: 0, ...c });
      }
    }
    await upsertAdd(
      tx,
      sqlite,
      'reputation_protocols',
      ['ip', 'protocol'],
      ['sessions', 'events'],
      protocolRows,
      ROWS_PER_STATEMENT,
    );
    await upsertAdd(
      tx,
      sqlite,
      'reputation_behaviors',
      ['ip', 'behavior'],
      ['count'],
      behaviorRows,
      ROWS_PER_STATEMENT,
    );
    await upsertAdd(
      tx,
      sqlite,
      'reputation_primitives',
      ['ip', 'primitive'],
      ['count'],
      primitiveRows,
      ROWS_PER_STATEMENT,
    );
    await upsertAdd(
      tx,
      sqlite,
      'reputation_days',
      ['ip', 'day'],
      ['sessions', 'events'],
      dayRows,
      ROWS_PER_STATEMENT,
    );
    await this.addSeen(tx, sqlite, 'sensor_usernames', 'username', 'sessions', usernames);
    await this.addSeen(tx, sqlite, 'sensor_recipients', 'email', 'messages', recipients);

    await deletePending(tx, sqlite, sessionsBySensorMap);

    // Scores (and max_severity) from the updated aggregates, as of the latest ingest of the chunk.
    const ips = ipDeltas.map((d) => d.ip.text).sort();
    await this.scorer.rescoreMany(tx, ips, now, sqlite);
    touched.push(...ips);
    return pending.length;
  }

  /**
   * Adds the sessions' window changes and turns every window that crossed its threshold (or fell back
   * below it) into ±1 on the IP's behaviour count (decision 0605).
   */
  private async applyWindows(
    tx: DbExecutor,
    sqlite: BetterSqlite3.Database | null,
    windowDeltas: ReadonlyMap<string, number>,
    deltas: ReadonlyMap<string, IpDelta>,
  ): Promise<void> {
    const rows: AuthWindowDelta[] = [];
    for (const [key, delta] of windowDeltas) {
      if (delta === 0) continue;
      const [ip, behavior, primitive, day] = key.split('\u0000') as [string, string, string, string];
      rows.push({ ip, behavior, primitive, day: Number(day), delta });
    }
    if (rows.length === 0) return;
    rows.sort((a, b) =>
      authWindowKey(a.ip, a.behavior, a.day) < authWindowKey(b.ip, b.behavior, b.day) ? -1 : 1,
    );
    const after = await addAuthWindows(tx, sqlite, rows);
    const changes = new Map<string, Map<string, number>>();
    for (const row of rows) {
      const key = authWindowKey(row.ip, row.behavior, row.day);
      const map = changes.get(key) ?? new Map<string, number>();
      map.set(row.primitive, (map.get(row.primitive) ?? 0) + row.delta);
      changes.set(key, map);
    }
    const thresholds = new Map(this.windowed.map((w) => [w.behavior, w.thresholds]));
    for (const [key, counts] of after) {
      const [ip, behavior] = key.split('\u0000') as [string, string];
      const change = changes.get(key) ?? new Map<string, number>();
      const crossed = (count: (primitive: string) => number) =>
        (thresholds.get(behavior) ?? []).some((t) => count(t.primitive) >= t.min);
      const now = crossed((p) => counts.get(p) ?? 0);
      const before = crossed((p) => (counts.get(p) ?? 0) - (change.get(p) ?? 0));
      const delta = deltas.get(ip);
      if (now !== before && delta) bump(delta.behaviors, behavior, now ? 1 : -1);
    }
  }

  private async addSeen(
    tx: DbExecutor,
    sqlite: BetterSqlite3.Database | null,
    table: 'sensor_usernames' | 'sensor_recipients',
    column: 'username' | 'email',
    counter: 'sessions' | 'messages',
    seen: Map<string, SeenRange>,
  ): Promise<void> {
    const rows = [...seen].map(([key, range]) => {
      const [protocol, value] = key.split('\u0000') as [string, string];
      return {
        [column]: value,
        protocol,
        [counter]: range.count,
        first_seen: range.first,
        last_seen: range.last,
      };
    });
    if (sqlite) {
      const set = `${counter} = ${table}.${counter} + excluded.${counter}, first_seen = case when excluded.first_seen < ${table}.first_seen then excluded.first_seen else ${table}.first_seen end, last_seen = case when excluded.last_seen > ${table}.last_seen then excluded.last_seen else ${table}.last_seen end`;
      sqliteUpsertRows(
        sqlite,
        table,
        [column, 'protocol', counter, 'first_seen', 'last_seen'],
        [column, 'protocol'],
        set,
        rows,
      );
      return;
    }
    for (const part of chunks(rows, ROWS_PER_STATEMENT)) {
      await tx
        .insertInto(table)
        // biome-ignore lint/suspicious/noExplicitAny: the two tables differ only in column names
        .values(part as any)
        .onConflict((oc) =>
          // biome-ignore lint/suspicious/noExplicitAny: see above
          oc.columns([column, 'protocol'] as any).doUpdateSet({
            [counter]: sql`${sql.ref(`${table}.${counter}`)} + excluded.${sql.ref(counter)}`,
            first_seen: sql`case when excluded.first_seen < ${sql.ref(`${table}.first_seen`)} then excluded.first_seen else ${sql.ref(`${table}.first_seen`)} end`,
            last_seen: sql`case when excluded.last_seen > ${sql.ref(`${table}.last_seen`)} then excluded.last_seen else ${sql.ref(`${table}.last_seen`)} end`,
            // biome-ignore lint/suspicious/noExplicitAny: see above
          } as any),
        )
        .execute();
    }
  }
}
