// Read side of the sensor evidence aggregates (SPEC §1, §3.1, §3.5): behaviours, primitives, protocols, usernames, recipients.
import type BetterSqlite3 from 'better-sqlite3';
import { type Catalog, loadCatalog, type Severity } from '../core/detection/catalog.js';
import type { DbExecutor } from '../store/database.js';
import { sqliteStatement } from '../store/sqlite-rows.js';

/** Severity as stored in `reputations.max_severity`: 0 none, 1 low, 2 medium, 3 high, 4 very_high. */
export const SEVERITY_RANK: Readonly<Record<Severity, number>> = { low: 1, medium: 2, high: 3, very_high: 4 };

export interface BehaviorSummary {
  name: string;
  severity: Severity;
  count: number;
  description: string;
  mitre: string[];
  killChainPhase: string;
}

export interface PrimitiveSummary {
  name: string;
  count: number;
  description: string;
}

export interface ProtocolSummary {
  protocol: string;
  sessions: number;
  events: number;
}

interface CatalogIndex {
  behaviors: Map<string, Catalog['behaviors'][number]>;
  primitives: Map<string, Catalog['primitives'][number]>;
}

let index: CatalogIndex | null = null;

function catalogIndex(): CatalogIndex {
  if (index === null) {
    const catalog = loadCatalog();
    index = {
      behaviors: new Map(catalog.behaviors.map((b) => [b.name, b])),
      primitives: new Map(catalog.primitives.map((p) => [p.name, p])),
    };
  }
  return index;
}

/** The severity of a catalog behaviour, or null for a name the catalog no longer has. */
export function behaviorSeverity(name: string): Severity | null {
  return catalogIndex().behaviors.get(name)?.severity ?? null;
}

/**
 * The IP's behaviours with catalog details, most frequent first. `count` is the number of the IP's
 * sessions that showed the behaviour. Names no longer in the catalog are left out.
 */
export async function behaviorsFor(db: DbExecutor, ip: string): Promise<BehaviorSummary[]> {
  const rows = await db
    .selectFrom('reputation_behaviors')
    .select(['behavior', 'count'])
    .where('ip', '=', ip)
    .where('count', '>', 0)
    .orderBy('count', 'desc')
    .orderBy('behavior')
    .execute();
  const out: BehaviorSummary[] = [];
  for (const row of rows) {
    const summary = behaviorSummary(row);
    if (summary) out.push(summary);
  }
  return out;
}

/** A stored behaviour count with its catalog description; null for a behaviour the catalog no longer has. */
function behaviorSummary(row: { behavior: string; count: number | string | bigint }): BehaviorSummary | null {
  const behavior = catalogIndex().behaviors.get(row.behavior);
  if (!behavior) return null;
  return {
    name: behavior.name,
    severity: behavior.severity,
    count: Number(row.count),
    description: behavior.description,
    mitre: [...behavior.mitre],
    killChainPhase: behavior.killChainPhase,
  };
}

/** `behaviorsFor` for many IPs in a few IN-list reads (an IP with none maps to []). */
export async function behaviorsForMany(
  db: DbExecutor,
  ips: readonly string[],
): Promise<Map<string, BehaviorSummary[]>> {
  const out = new Map<string, BehaviorSummary[]>();
  for (const ip of ips) out.set(ip, []);
  for (let i = 0; i < ips.length; i += 500) {
    const rows = await db
      .selectFrom('reputation_behaviors')
      .select(['ip', 'behavior', 'count'])
      .where('ip', 'in', ips.slice(i, i + 500))
      .where('count', '>', 0)
      .orderBy('ip')
      .orderBy('count', 'desc')
      .orderBy('behavior')
      .execute();
    for (const row of rows) {
      const summary = behaviorSummary(row);
      if (summary) out.get(row.ip)?.push(summary);
    }
  }
  return out;
}

/** The IP's matched primitives with descriptions, most frequent first. */
export async function primitivesFor(db: DbExecutor, ip: string): Promise<PrimitiveSummary[]> {
  const rows = await db
    .selectFrom('reputation_primitives')
    .select(['primitive', 'count'])
    .where('ip', '=', ip)
    .where('count', '>', 0)
    .orderBy('count', 'desc')
    .orderBy('primitive')
    .execute();
  const out: PrimitiveSummary[] = [];
  for (const row of rows) {
    const primitive = catalogIndex().primitives.get(row.primitive);
    if (!primitive) continue;
    out.push({ name: primitive.name, count: Number(row.count), description: primitive.description });
  }
  return out;
}

/** Sessions and events per protocol, most sessions first. */
export async function protocolsFor(db: DbExecutor, ip: string): Promise<ProtocolSummary[]> {
  const rows = await db
    .selectFrom('reputation_protocols')
    .select(['protocol', 'sessions', 'events'])
    .where('ip', '=', ip)
    .where((eb) => eb.or([eb('sessions', '>', 0), eb('events', '>', 0)]))
    .orderBy('sessions', 'desc')
    .orderBy('events', 'desc')
    .orderBy('protocol')
    .execute();
  return rows.map((r) => ({ protocol: r.protocol, sessions: Number(r.sessions), events: Number(r.events) }));
}

/** The sensor part of the scoring input (SPEC §5 item 1), read from aggregates only. */
export interface SensorScoringAggregates {
  protocols: number;
  primitives: number;
  behaviors: { severity: Severity; count: number }[];
  maxSeverity: number;
}

export async function sensorScoringAggregates(db: DbExecutor, ip: string): Promise<SensorScoringAggregates> {
  const [protocols, primitives, behaviors] = await Promise.all([
    db
      .selectFrom('reputation_protocols')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('ip', '=', ip)
      .where('sessions', '>', 0)
      .executeTakeFirstOrThrow(),
    db
      .selectFrom('reputation_primitives')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('ip', '=', ip)
      .where('count', '>', 0)
      .executeTakeFirstOrThrow(),
    db
      .selectFrom('reputation_behaviors')
      .select(['behavior', 'count'])
      .where('ip', '=', ip)
      .where('count', '>', 0)
      .execute(),
  ]);
  const list: { severity: Severity; count: number }[] = [];
  let maxSeverity = 0;
  for (const row of behaviors) {
    const severity = behaviorSeverity(row.behavior);
    if (severity === null) continue;
    list.push({ severity, count: Number(row.count) });
    maxSeverity = Math.max(maxSeverity, SEVERITY_RANK[severity]);
  }
  return { protocols: Number(protocols.n), primitives: Number(primitives.n), behaviors: list, maxSeverity };
}

/** sensorScoringAggregates for many IPs in three statements per 500 IPs (the ingest hot path). */
export async function sensorScoringAggregatesMany(
  db: DbExecutor,
  ips: readonly string[],
): Promise<Map<string, SensorScoringAggregates>> {
  const out = new Map<string, SensorScoringAggregates>();
  for (const ip of ips) out.set(ip, { protocols: 0, primitives: 0, behaviors: [], maxSeverity: 0 });
  for (let i = 0; i < ips.length; i += 500) {
    const part = ips.slice(i, i + 500);
    const [protocols, primitives, behaviors] = await Promise.all([
      db
        .selectFrom('reputation_protocols')
        .select((eb) => ['ip', eb.fn.countAll<number>().as('n')])
        .where('ip', 'in', part)
        .where('sessions', '>', 0)
        .groupBy('ip')
        .execute(),
      db
        .selectFrom('reputation_primitives')
        .select((eb) => ['ip', eb.fn.countAll<number>().as('n')])
        .where('ip', 'in', part)
        .where('count', '>', 0)
        .groupBy('ip')
        .execute(),
      db
        .selectFrom('reputation_behaviors')
        .select(['ip', 'behavior', 'count'])
        .where('ip', 'in', part)
        .where('count', '>', 0)
        .execute(),
    ]);
    for (const row of protocols) {
      const entry = out.get(row.ip);
      if (entry) entry.protocols = Number(row.n);
    }
    for (const row of primitives) {
      const entry = out.get(row.ip);
      if (entry) entry.primitives = Number(row.n);
    }
    for (const row of behaviors) {
      const entry = out.get(row.ip);
      const severity = behaviorSeverity(row.behavior);
      if (!entry || severity === null) continue;
      entry.behaviors.push({ severity, count: Number(row.count) });
      entry.maxSeverity = Math.max(entry.maxSeverity, SEVERITY_RANK[severity]);
    }
  }
  return out;
}

/**
 * sensorScoringAggregatesMany on SQLite's raw connection (`db` the one the caller's transaction is on):
 * three statements in all, each joining the IP list (one JSON array parameter) to an aggregate table's
 * primary key. Same result.
 */
export function sensorScoringAggregatesSqlite(
  db: BetterSqlite3.Database,
  ips: readonly string[],
): Map<string, SensorScoringAggregates> {
  const out = new Map<string, SensorScoringAggregates>();
  for (const ip of ips) out.set(ip, { protocols: 0, primitives: 0, behaviors: [], maxSeverity: 0 });
  if (ips.length === 0) return out;
  const list = JSON.stringify(ips);
  const counts = (table: string, column: string) =>
    sqliteStatement(
      db,
      `select t.ip, count(*) from json_each(?) as j join ${table} as t on t.ip = j.value where t.${column} > 0 group by t.ip`,
    )
      .raw()
      .all(list) as [string, number][];
  for (const [ip, n] of counts('reputation_protocols', 'sessions')) {
    const entry = out.get(ip);
    if (entry) entry.protocols = Number(n);
  }
  for (const [ip, n] of counts('reputation_primitives', 'count')) {
    const entry = out.get(ip);
    if (entry) entry.primitives = Number(n);
  }
  const behaviors = sqliteStatement(
    db,
    'select t.ip, t.behavior, t.count from json_each(?) as j join reputation_behaviors as t on t.ip = j.value where t.count > 0 order by t.ip, t.behavior',
  )
    .raw()
    .all(list) as [string, string, number][];
  for (const [ip, behavior, count] of behaviors) {
    const entry = out.get(ip);
    const severity = behaviorSeverity(behavior);
    if (!entry || severity === null) continue;
    entry.behaviors.push({ severity, count: Number(count) });
    entry.maxSeverity = Math.max(entry.maxSeverity, SEVERITY_RANK[severity]);
  }
  return out;
}

/** SPEC §3.5 username look-up; times are epoch ms. Null when no sensor ever saw the username. */
export interface UsernameSummary {
  username: string;
  totalSessions: number;
  protocolCounts: Record<string, number>;
  firstSeenAt: number;
  lastSeenAt: number;
}

export async function usernameSummary(db: DbExecutor, username: string): Promise<UsernameSummary | null> {
  const rows = await db
    .selectFrom('sensor_usernames')
    .selectAll()
    .where('username', '=', username)
    .orderBy('protocol')
    .execute();
  if (rows.length === 0) return null;
  const protocolCounts: Record<string, number> = {};
  let totalSessions = 0;
  let firstSeenAt = Number.POSITIVE_INFINITY;
  let lastSeenAt = 0;
  for (const row of rows) {
    protocolCounts[row.protocol] = Number(row.sessions);
    totalSessions += Number(row.sessions);
    firstSeenAt = Math.min(firstSeenAt, Number(row.first_seen));
    lastSeenAt = Math.max(lastSeenAt, Number(row.last_seen));
  }
  return { username, totalSessions, protocolCounts, firstSeenAt, lastSeenAt };
}

/** SPEC §3.5 e-mail look-up (SMTP recipients); `totalMessages` counts RCPT TO commands naming it. */
export interface EmailSummary {
  email: string;
  totalMessages: number;
  protocolCounts: Record<string, number>;
  firstSeenAt: number;
  lastSeenAt: number;
}

/** Recipients are stored lower-cased; the look-up lower-cases too. */
export function normaliseEmail(email: string): string {
  return email.trim().toLowerCase();
}

export async function emailSummary(db: DbExecutor, email: string): Promise<EmailSummary | null> {
  const key = normaliseEmail(email);
  const rows = await db
    .selectFrom('sensor_recipients')
    .selectAll()
    .where('email', '=', key)
    .orderBy('protocol')
    .execute();
  if (rows.length === 0) return null;
  const protocolCounts: Record<string, number> = {};
  let totalMessages = 0;
  let firstSeenAt = Number.POSITIVE_INFINITY;
  let lastSeenAt = 0;
  for (const row of rows) {
    protocolCounts[row.protocol] = Number(row.messages);
    totalMessages += Number(row.messages);
    firstSeenAt = Math.min(firstSeenAt, Number(row.first_seen));
    lastSeenAt = Math.max(lastSeenAt, Number(row.last_seen));
  }
  return { email: key, totalMessages, protocolCounts, firstSeenAt, lastSeenAt };
}
