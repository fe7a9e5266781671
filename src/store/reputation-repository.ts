// Per-IP reputation aggregates (SPEC §1): updated incrementally as evidence arrives, read without touching raw rows.
import { randomUUID } from 'node:crypto';
import type { Selectable } from 'kysely';
import { sql } from 'kysely';
import { type Cidr, cidrLastKey } from '../core/ip.js';
import type { DbExecutor, Dialect, ReputationsTable } from './database.js';
import { prepared } from './prepared.js';

export type ReputationRow = Selectable<ReputationsTable>;

/** Upsert SET expression keeping the later of the stored and the incoming value of `column`. */
export const later = (column: string) =>
  sql<number>`case when excluded.${sql.ref(column)} > reputations.${sql.ref(column)} then excluded.${sql.ref(column)} else reputations.${sql.ref(column)} end`;
/** Upsert SET expression keeping the earlier of the stored and the incoming value of `column`. */
export const earlier = (column: string) =>
  sql<number>`case when excluded.${sql.ref(column)} < reputations.${sql.ref(column)} then excluded.${sql.ref(column)} else reputations.${sql.ref(column)} end`;

/**
 * The columns every new reputation row starts with (score 0 until the first rescore, a fresh STIX id),
 * with country and ASN when the caller has them (every writer that can create a row passes them, so
 * blacklist `onlyCountries`/`onlyAsn` filters see every row).
 */
export function newReputationRow(
  ip: { text: string; key: Buffer; version: 4 | 6 },
  firstSeen: number,
  lastSeen: number,
  now: number,
  geo?: RowEnrichment | null,
) {
  return {
    ip: ip.text,
    ip_key: ip.key,
    ip_version: ip.version,
    first_seen: firstSeen,
    last_seen: lastSeen,
    score: 0,
    score_raw: 0,
    score_updated_at: now,
    stix_id: randomUUID(),
    country_code: geo?.countryCode ?? null,
    asn: geo?.asn ?? null,
    asn_org: geo?.asnOrg ?? null,
  };
}

/** Upsert SET entries that fill country and ASN on an existing row that has none (never overwrite). */
export const fillGeoColumns = () => ({
  country_code: sql<string>`coalesce(reputations.country_code, excluded.country_code)`,
  asn: sql<string>`coalesce(reputations.asn, excluded.asn)`,
  asn_org: sql<string>`coalesce(reputations.asn_org, excluded.asn_org)`,
});

/**
 * Serialises writers of one IP for the rest of the transaction. PostgreSQL takes a transaction-scoped
 * advisory lock; SQLite needs nothing (BEGIN IMMEDIATE already holds the only write lock).
 */
export async function lockIp(tx: DbExecutor, dialect: Dialect, ip: string): Promise<void> {
  if (dialect === 'postgres') {
    await sql`select pg_advisory_xact_lock(hashtextextended(${ip}, 7461))`.execute(tx);
  }
}

/** Country and ASN columns for a new row (SPEC §3.1 geolocation); nulls when unknown. */
export interface RowEnrichment {
  readonly countryCode: string | null;
  readonly asn: string | null;
  readonly asnOrg: string | null;
}

/**
 * Creates the IP's row if missing and widens first/last seen to include `at`. `geo` fills the country
 * and ASN columns of a new row, or of an existing row that still has none (no extra statement).
 */
export async function touchReputation(
  tx: DbExecutor,
  ip: { text: string; key: Buffer; version: 4 | 6 },
  at: number,
  now: number,
  geo?: RowEnrichment,
): Promise<void> {
  await tx
    .insertInto('reputations')
    .values(newReputationRow(ip, at, at, now, geo))
    .onConflict((oc) =>
      oc.column('ip').doUpdateSet({
        first_seen: earlier('first_seen'),
        last_seen: later('last_seen'),
        ...(geo ? fillGeoColumns() : {}),
      }),
    )
    .execute();
}

const selectReputation = prepared(1, (db, ip: string) =>
  db.selectFrom('reputations').selectAll().where('ip', '=', ip),
);

export async function getReputation(db: DbExecutor, ip: string): Promise<ReputationRow | undefined> {
  return (await selectReputation(db, ip))[0];
}

export async function setScore(
  tx: DbExecutor,
  ip: string,
  score: number,
  scoreRaw: number,
  now: number,
  maxSeverity?: number,
): Promise<void> {
  await tx
    .updateTable('reputations')
    .set({
      score,
      score_raw: scoreRaw,
      score_updated_at: now,
      ...(maxSeverity === undefined ? {} : { max_severity: maxSeverity }),
    })
    .where('ip', '=', ip)
    .execute();
}

/** Records one more report by `reporterId`; returns whether the reporter is new for this IP and the weight delta. */
export async function addReporterReport(
  tx: DbExecutor,
  ip: string,
  reporterId: string,
  at: number,
  weightFor: (reports: number) => number,
): Promise<{ newReporter: boolean; weightDelta: number }> {
  const existing = await tx
    .selectFrom('reputation_reporters')
    .select(['reports', 'weight'])
    .where('ip', '=', ip)
    .where('reporter_id', '=', reporterId)
    .executeTakeFirst();
  if (!existing) {
    const weight = weightFor(1);
    await tx
      .insertInto('reputation_reporters')
      .values({
        ip,
        reporter_id: reporterId,
        reports: 1,
        weight,
        first_reported_at: at,
        last_reported_at: at,
      })
      .execute();
    return { newReporter: true, weightDelta: weight };
  }
  const reports = Number(existing.reports) + 1;
  // Never lower a reporter's weight (SPEC §5 item 8), even if its trust was lowered meanwhile.
  const weight = Math.max(existing.weight, weightFor(reports));
  await tx
    .updateTable('reputation_reporters')
    .set({
      reports,
      weight,
      last_reported_at: sql<number>`case when last_reported_at > ${at} then last_reported_at else ${at} end`,
    })
    .where('ip', '=', ip)
    .where('reporter_id', '=', reporterId)
    .execute();
  return { newReporter: false, weightDelta: weight - existing.weight };
}

export async function addCategories(
  tx: DbExecutor,
  ip: string,
  categories: readonly string[],
): Promise<void> {
  for (const category of new Set(categories)) {
    await tx
      .insertInto('reputation_categories')
      .values({ ip, category, count: 1 })
      .onConflict((oc) =>
        oc.columns(['ip', 'category']).doUpdateSet({ count: sql<number>`reputation_categories.count + 1` }),
      )
      .execute();
  }
}

export async function addDayCounts(
  tx: DbExecutor,
  ip: string,
  day: number,
  counts: { reports?: number; sessions?: number; events?: number },
): Promise<void> {
  const reports = counts.reports ?? 0;
  const sessions = counts.sessions ?? 0;
  const events = counts.events ?? 0;
  await tx
    .insertInto('reputation_days')
    .values({ ip, day, reports, sessions, events })
    .onConflict((oc) =>
      oc.columns(['ip', 'day']).doUpdateSet({
        reports: sql<number>`reputation_days.reports + excluded.reports`,
        sessions: sql<number>`reputation_days.sessions + excluded.sessions`,
        events: sql<number>`reputation_days.events + excluded.events`,
      }),
    )
    .execute();
}

export async function addContributorTotals(
  tx: DbExecutor,
  ip: string,
  delta: { reports: number; newReporters: number; weight: number; reportedAt: number },
): Promise<void> {
  await tx
    .updateTable('reputations')
    .set({
      report_count: sql<number>`report_count + ${delta.reports}`,
      distinct_reporters: sql<number>`distinct_reporters + ${delta.newReporters}`,
      contributor_weight: sql<number>`contributor_weight + ${delta.weight}`,
      last_reported_at: sql<number>`case when last_reported_at is null or last_reported_at < ${delta.reportedAt} then ${delta.reportedAt} else last_reported_at end`,
    })
    .where('ip', '=', ip)
    .execute();
}

export async function getCategoryCounts(
  db: DbExecutor,
  ip: string,
): Promise<{ category: string; count: number }[]> {
  const rows = await db
    .selectFrom('reputation_categories')
    .select(['category', 'count'])
    .where('ip', '=', ip)
    .orderBy('count', 'desc')
    .orderBy('category')
    .execute();
  return rows.map((r) => ({ category: r.category, count: Number(r.count) }));
}

/** Sums of the per-day counters from `fromDay` on (for `maxAge`). */
export async function getDayTotals(
  db: DbExecutor,
  ip: string,
  fromDay: number,
): Promise<{ reports: number; sessions: number; events: number }> {
  const row = await db
    .selectFrom('reputation_days')
    .select((eb) => [
      eb.fn.coalesce(eb.fn.sum<number>('reports'), sql<number>`0`).as('reports'),
      eb.fn.coalesce(eb.fn.sum<number>('sessions'), sql<number>`0`).as('sessions'),
      eb.fn.coalesce(eb.fn.sum<number>('events'), sql<number>`0`).as('events'),
    ])
    .where('ip', '=', ip)
    .where('day', '>=', fromDay)
    .executeTakeFirstOrThrow();
  return { reports: Number(row.reports), sessions: Number(row.sessions), events: Number(row.events) };
}

export async function countReportersSince(db: DbExecutor, ip: string, since: number): Promise<number> {
  const row = await db
    .selectFrom('reputation_reporters')
    .select((eb) => eb.fn.countAll<number>().as('count'))
    .where('ip', '=', ip)
    .where('last_reported_at', '>=', since)
    .executeTakeFirstOrThrow();
  return Number(row.count);
}

/** Adds one contributor report to the protocol's `events` counter (decision 0601). */
export async function addReportProtocol(tx: DbExecutor, ip: string, protocol: string): Promise<void> {
  await tx
    .insertInto('reputation_protocols')
    .values({ ip, protocol, sessions: 0, events: 1 })
    .onConflict((oc) =>
      oc.columns(['ip', 'protocol']).doUpdateSet({ events: sql<number>`reputation_protocols.events + 1` }),
    )
    .execute();
}

/** Rows per multi-row insert (SQLite allows 32,766 bound parameters; a row here binds 13). */
const INSERT_BATCH = 1000;

/**
 * Inserts brand-new rows in bulk (feed imports); a row that appeared meanwhile is left alone. Returns the
 * inserted rows as stored, for the score listeners.
 */
export async function insertNewReputations(
  tx: DbExecutor,
  rows: readonly Omit<
    ReputationRow,
    | 'sessions'
    | 'events'
    | 'report_count'
    | 'distinct_reporters'
    | 'contributor_weight'
    | 'sensor_first_seen'
    | 'sensor_last_seen'
    | 'last_reported_at'
  >[],
): Promise<void> {
  for (let i = 0; i < rows.length; i += INSERT_BATCH) {
    await tx
      .insertInto('reputations')
      .values(rows.slice(i, i + INSERT_BATCH))
      .onConflict((oc) => oc.column('ip').doNothing())
      .execute();
  }
}

/** Which of `ips` already have a reputation row. */
/** Addresses inside `cidr` that have a reputation row: one ordered scan of the `ip_key` index. */
export async function reputationIpsIn(db: DbExecutor, cidr: Cidr): Promise<string[]> {
  const rows = await db
    .selectFrom('reputations')
    .select('ip')
    .where('ip_key', '>=', cidr.network.key)
    .where('ip_key', '<=', cidrLastKey(cidr))
    .execute();
  return rows.map((row) => row.ip);
}

export async function existingReputations(db: DbExecutor, ips: readonly string[]): Promise<Set<string>> {
  const found = new Set<string>();
  for (let i = 0; i < ips.length; i += INSERT_BATCH) {
    const rows = await db
      .selectFrom('reputations')
      .select('ip')
      .where('ip', 'in', ips.slice(i, i + INSERT_BATCH))
      .execute();
    for (const row of rows) found.add(row.ip);
  }
  return found;
}
