// Set-based writes for many reports in one transaction (bulk report, SPEC §3.4): IN-list reads, multi-row upserts.
import type BetterSqlite3 from 'better-sqlite3';
import { sql } from 'kysely';
import type { DbExecutor, Dialect } from './database.js';
import { type NewReport, reportRow } from './reports-repository.js';
import {
  earlier,
  fillGeoColumns,
  later,
  newReputationRow,
  type ReputationRow,
  type RowEnrichment,
} from './reputation-repository.js';
import { sqliteInsertObjects, sqliteStatement, sqliteUpsertRows } from './sqlite-rows.js';

/**
 * The write functions below take `sqlite`: the store's raw SQLite connection (`Store.sqlite`, whose one
 * connection the caller's transaction `tx` is on) to write row by row through cached prepared statements,
 * or null to write with Kysely's multi-row statements (PostgreSQL). Both store exactly the same rows.
 */
type Raw = BetterSqlite3.Database | null;

/**
 * Rows per statement. Well under SQLite's 32,766 bound variables and PostgreSQL's 65,535 parameters for
 * the widest statement here (13 columns), and IN lists stay short enough to plan as index probes.
 */
export const BATCH_ROWS = 500;

export function chunks<T>(items: readonly T[], size = BATCH_ROWS): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * Locks many IPs for the rest of the transaction (PostgreSQL advisory locks; SQLite's write lock already
 * covers them). Taken in ascending lock-key order, each key once, so two batches sharing IPs cannot
 * deadlock; callers take them before anything else (the TAXII clock in particular).
 */
export async function lockIps(tx: DbExecutor, dialect: Dialect, ips: readonly string[]): Promise<void> {
  if (dialect !== 'postgres' || ips.length === 0) return;
  await sql`select count(pg_advisory_xact_lock(k)) from (
    select distinct hashtextextended(x, 7461) as k from unnest(${[...ips]}::text[]) as x order by k
  ) as ordered`.execute(tx);
}

/** `ip \0 category` for every (ip, category) this key reported at or after `since` (server receive time). */
export async function recentReportKeys(
  db: DbExecutor,
  keyId: string,
  ips: readonly string[],
  since: number,
): Promise<Set<string>> {
  const out = new Set<string>();
  for (const part of chunks(ips)) {
    const rows = await db
      .selectFrom('reports')
      .select(['ip', 'category'])
      .distinct()
      .where('key_id', '=', keyId)
      .where('ip', 'in', part)
      .where('received_at', '>=', since)
      .execute();
    for (const row of rows) out.add(`${row.ip}\u0000${row.category}`);
  }
  return out;
}

export async function insertReports(
  tx: DbExecutor,
  reports: readonly NewReport[],
  sqlite: Raw = null,
): Promise<void> {
  if (sqlite) {
    sqliteInsertObjects(sqlite, 'reports', reports.map(reportRow));
    return;
  }
  for (const part of chunks(reports)) {
    await tx.insertInto('reports').values(part.map(reportRow)).execute();
  }
}

/** The existing rows of one reporter for many IPs. */
export async function reporterRows(
  db: DbExecutor,
  reporterId: string,
  ips: readonly string[],
): Promise<Map<string, { reports: number; weight: number }>> {
  const out = new Map<string, { reports: number; weight: number }>();
  for (const part of chunks(ips)) {
    const rows = await db
      .selectFrom('reputation_reporters')
      .select(['ip', 'reports', 'weight'])
      .where('reporter_id', '=', reporterId)
      .where('ip', 'in', part)
      .execute();
    for (const row of rows) out.set(row.ip, { reports: Number(row.reports), weight: Number(row.weight) });
  }
  return out;
}

export interface ReporterDelta {
  readonly ip: string;
  readonly reporterId: string;
  /** Reports added. */
  readonly reports: number;
  /** The new absolute weight (already never lower than the stored one). */
  readonly weight: number;
  /** reportedAt of the first added report (kept only when the row is new). */
  readonly firstReportedAt: number;
  /** Latest reportedAt among the added reports. */
  readonly lastReportedAt: number;
}

/** Each (ip, reporter) at most once per call (one conflict key per statement, as PostgreSQL requires). */
export const REPORTER_CONFLICT = `on conflict (ip, reporter_id) do update set
  reports = reputation_reporters.reports + excluded.reports,
  weight = excluded.weight,
  last_reported_at = case when excluded.last_reported_at > reputation_reporters.last_reported_at then excluded.last_reported_at else reputation_reporters.last_reported_at end`;

export async function upsertReporters(
  tx: DbExecutor,
  deltas: readonly ReporterDelta[],
  sqlite: Raw = null,
): Promise<void> {
  if (sqlite) {
    sqliteInsertObjects(
      sqlite,
      'reputation_reporters',
      deltas.map((d) => ({
        ip: d.ip,
        reporter_id: d.reporterId,
        reports: d.reports,
        weight: d.weight,
        first_reported_at: d.firstReportedAt,
        last_reported_at: d.lastReportedAt,
      })),
      REPORTER_CONFLICT,
    );
    return;
  }
  for (const part of chunks(deltas)) {
    await tx
      .insertInto('reputation_reporters')
      .values(
        part.map((d) => ({
          ip: d.ip,
          reporter_id: d.reporterId,
          reports: d.reports,
          weight: d.weight,
          first_reported_at: d.firstReportedAt,
          last_reported_at: d.lastReportedAt,
        })),
      )
      .onConflict((oc) =>
        oc.columns(['ip', 'reporter_id']).doUpdateSet({
          reports: sql<number>`reputation_reporters.reports + excluded.reports`,
          weight: sql<number>`excluded.weight`,
          last_reported_at: sql<number>`case when excluded.last_reported_at > reputation_reporters.last_reported_at then excluded.last_reported_at else reputation_reporters.last_reported_at end`,
        }),
      )
      .execute();
  }
}

/**
 * Multi-row upsert adding the `added` columns of `rows` to existing rows of a counter table keyed by
 * `keys`; `rows` must not repeat a key. One cached statement per row on SQLite (`sqlite`), multi-row
 * statements of `size` rows otherwise.
 */
export async function upsertAdd<T extends Record<string, string | number>>(
  tx: DbExecutor,
  sqlite: Raw,
  table:
    | 'reputation_categories'
    | 'reputation_protocols'
    | 'reputation_behaviors'
    | 'reputation_primitives'
    | 'reputation_days',
  keys: readonly string[],
  added: readonly string[],
  rows: readonly T[],
  size = BATCH_ROWS,
): Promise<void> {
  const first = rows[0];
  if (first === undefined) return;
  if (sqlite) {
    const set = added.map((column) => `${column} = ${table}.${column} + excluded.${column}`).join(', ');
    sqliteUpsertRows(sqlite, table, Object.keys(first), keys, set, rows);
    return;
  }
  for (const part of chunks(rows, size)) {
    const set: Record<string, unknown> = {};
    for (const column of added)
      set[column] = sql`${sql.ref(`${table}.${column}`)} + excluded.${sql.ref(column)}`;
    await tx
      .insertInto(table)
      // biome-ignore lint/suspicious/noExplicitAny: one helper for five tables of the same shape
      .values(part as any)
      // biome-ignore lint/suspicious/noExplicitAny: see above
      .onConflict((oc) => oc.columns(keys as any).doUpdateSet(set as any))
      .execute();
  }
}

/** Each (ip, category) at most once per call. */
export async function upsertCategories(
  tx: DbExecutor,
  deltas: readonly { ip: string; category: string; count: number }[],
  sqlite: Raw = null,
): Promise<void> {
  await upsertAdd(
    tx,
    sqlite,
    'reputation_categories',
    ['ip', 'category'],
    ['count'],
    deltas.map((d) => ({ ip: d.ip, category: d.category, count: d.count })),
  );
}

/** Each (ip, day) at most once per call; adds to `reports` only. */
export async function upsertDayReports(
  tx: DbExecutor,
  deltas: readonly { ip: string; day: number; reports: number }[],
  sqlite: Raw = null,
): Promise<void> {
  await upsertAdd(
    tx,
    sqlite,
    'reputation_days',
    ['ip', 'day'],
    ['reports'],
    deltas.map((d) => ({ ip: d.ip, day: d.day, reports: d.reports, sessions: 0, events: 0 })),
  );
}

/** Each (ip, protocol) at most once per call; adds to `events` only (ReportService.apply's addReportProtocol). */
export async function upsertReportProtocols(
  tx: DbExecutor,
  deltas: readonly { ip: string; protocol: string; events: number }[],
  sqlite: Raw = null,
): Promise<void> {
  await upsertAdd(
    tx,
    sqlite,
    'reputation_protocols',
    ['ip', 'protocol'],
    ['events'],
    deltas.map((d) => ({ ip: d.ip, protocol: d.protocol, sessions: 0, events: d.events })),
  );
}

export interface ContributorDelta {
  readonly ip: { readonly text: string; readonly key: Buffer; readonly version: 4 | 6 };
  /** Earliest and latest reportedAt added (widen first/last seen). */
  readonly firstAt: number;
  readonly lastAt: number;
  readonly reports: number;
  readonly newReporters: number;
  readonly weight: number;
  /** Country and ASN for a row this call creates (or an existing row without them). */
  readonly geo?: RowEnrichment | null;
}

/**
 * Creates missing reputation rows and adds contributor totals, one row per IP per call: the batch form of
 * touchReputation + addContributorTotals.
 */
export function contributorRow(d: ContributorDelta, now: number) {
  return {
    ...newReputationRow(d.ip, d.firstAt, d.lastAt, now, d.geo),
    report_count: d.reports,
    distinct_reporters: d.newReporters,
    contributor_weight: d.weight,
    last_reported_at: d.lastAt,
  };
}

const LAST_REPORTED = sql<number>`case when reputations.last_reported_at is null or reputations.last_reported_at < excluded.last_reported_at then excluded.last_reported_at else reputations.last_reported_at end`;

export async function upsertContributorTotals(
  tx: DbExecutor,
  deltas: readonly ContributorDelta[],
  now: number,
  sqlite: Raw = null,
): Promise<void> {
  if (sqlite) {
    // The same SET expressions as below, compiled once by Kysely for SQLite.
    const text = (expression: { compile(db: DbExecutor): { sql: string } }) => expression.compile(tx).sql;
    sqliteInsertObjects(
      sqlite,
      'reputations',
      deltas.map((d) => contributorRow(d, now)),
      `on conflict (ip) do update set first_seen = ${text(earlier('first_seen'))},
        last_seen = ${text(later('last_seen'))},
        report_count = reputations.report_count + excluded.report_count,
        distinct_reporters = reputations.distinct_reporters + excluded.distinct_reporters,
        contributor_weight = reputations.contributor_weight + excluded.contributor_weight,
        last_reported_at = ${text(LAST_REPORTED)},
        country_code = coalesce(reputations.country_code, excluded.country_code),
        asn = coalesce(reputations.asn, excluded.asn),
        asn_org = coalesce(reputations.asn_org, excluded.asn_org)`,
    );
    return;
  }
  for (const part of chunks(deltas)) {
    await tx
      .insertInto('reputations')
      .values(part.map((d) => contributorRow(d, now)))
      .onConflict((oc) =>
        oc.column('ip').doUpdateSet({
          first_seen: earlier('first_seen'),
          last_seen: later('last_seen'),
          report_count: sql<number>`reputations.report_count + excluded.report_count`,
          distinct_reporters: sql<number>`reputations.distinct_reporters + excluded.distinct_reporters`,
          contributor_weight: sql<number>`reputations.contributor_weight + excluded.contributor_weight`,
          last_reported_at: LAST_REPORTED,
          ...fillGeoColumns(),
        }),
      )
      .execute();
  }
}

/** Reputation rows of many IPs (missing IPs are absent from the map). */
export async function getReputations(
  db: DbExecutor,
  ips: readonly string[],
): Promise<Map<string, ReputationRow>> {
  const out = new Map<string, ReputationRow>();
  for (const part of chunks(ips)) {
    const rows = await db.selectFrom('reputations').selectAll().where('ip', 'in', part).execute();
    for (const row of rows) out.set(row.ip, row);
  }
  return out;
}

/**
 * Stores many scores with one `UPDATE … FROM (VALUES …)` per chunk (SQLite ≥ 3.33, PostgreSQL), or on
 * SQLite with `sqlite` one prepared UPDATE per row.
 */
export async function setScores(
  tx: DbExecutor,
  scores: readonly { ip: string; score: number; raw: number; maxSeverity: number }[],
  now: number,
  sqlite: Raw = null,
): Promise<void> {
  if (sqlite) {
    const statement = sqliteStatement(
      sqlite,
      'update reputations set score = ?, score_raw = ?, max_severity = ?, score_updated_at = ? where ip = ?',
    );
    for (const s of scores) statement.run(s.score, s.raw, s.maxSeverity, now, s.ip);
    return;
  }
  for (const part of chunks(scores)) {
    const values = sql.join(part.map((s) => sql`(${s.ip}, ${s.score}, ${s.raw}, ${s.maxSeverity})`));
    // VALUES columns are column1..4 on both engines; the casts type PostgreSQL's untyped parameters.
    await sql`update reputations set score = cast(v.column2 as integer), score_raw = cast(v.column3 as integer),
      max_severity = cast(v.column4 as integer), score_updated_at = ${now}
      from (values ${values}) as v where reputations.ip = v.column1`.execute(tx);
  }
}

/** Category names per IP, most reported first (as getCategoryCounts orders them); IPs with none are absent. */
export async function categoryNamesMany(
  db: DbExecutor,
  ips: readonly string[],
): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const part of chunks(ips)) {
    const rows = await db
      .selectFrom('reputation_categories')
      .select(['ip', 'category'])
      .where('ip', 'in', part)
      .orderBy('ip')
      .orderBy('count', 'desc')
      .orderBy('category')
      .execute();
    for (const row of rows) {
      const list = out.get(row.ip);
      if (list) list.push(row.category);
      else out.set(row.ip, [row.category]);
    }
  }
  return out;
}
