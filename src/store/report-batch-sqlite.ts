// Bulk report on SQLite's raw connection (decision 0852): set reads through json_each, each reputation row written once.
import type BetterSqlite3 from 'better-sqlite3';
import { utcDay } from '../core/time.js';
import {
  type ContributorDelta,
  contributorRow,
  REPORTER_CONFLICT,
  type ReporterDelta,
} from './report-batch-repository.js';
import { reportRow } from './reports-repository.js';
import { sqliteInsertObjects, sqliteStatement } from './sqlite-rows.js';

/** The parts of a validated report the `reports` row is made of (services' ValidReport has them). */
export interface BulkReportFields {
  readonly ip: { readonly text: string; readonly key: Buffer };
  /** Primary category first. */
  readonly categories: readonly string[];
  readonly protocol: string | null;
  readonly comment: string | null;
  readonly reportedAt: number;
}

const REPORT_COLUMNS = [
  'ip',
  'ip_key',
  'key_id',
  'category',
  'categories',
  'protocol',
  'comment',
  'reported_at',
  'received_at',
  'day',
] as const;

let reportColumnsChecked = false;

/**
 * Inserts the `reports` rows of `reports` with one positional prepared statement (no row object per
 * report). The column list is checked once against reportRow, the single source of the row's columns.
 */
export function insertReportsSqlite(
  sqlite: BetterSqlite3.Database,
  reports: readonly BulkReportFields[],
  keyId: string,
  now: number,
): void {
  if (!reportColumnsChecked) {
    const sample = reportRow({
      ip: '',
      ipKey: Buffer.alloc(0),
      keyId: '',
      category: '',
      categories: [],
      protocol: null,
      comment: null,
      reportedAt: 0,
      receivedAt: 0,
      day: 0,
    });
    if (Object.keys(sample).join(',') !== REPORT_COLUMNS.join(',')) {
      throw new Error('insertReportsSqlite: reportRow has other columns than REPORT_COLUMNS');
    }
    reportColumnsChecked = true;
  }
  const statement = sqliteStatement(
    sqlite,
    `insert into reports (${REPORT_COLUMNS.join(', ')}) values (${REPORT_COLUMNS.map(() => '?').join(', ')})`,
  );
  for (const report of reports) {
    statement.run(
      report.ip.text,
      report.ip.key,
      keyId,
      report.categories[0] ?? 'other',
      report.categories.join(','),
      report.protocol,
      report.comment,
      report.reportedAt,
      now,
      utcDay(report.reportedAt),
    );
  }
}

/** One reporter's existing rows for many IPs (one statement; `ips` travel as one JSON array). */
export function reporterRowsSqlite(
  sqlite: BetterSqlite3.Database,
  reporterId: string,
  ips: readonly string[],
): Map<string, { reports: number; weight: number }> {
  const out = new Map<string, { reports: number; weight: number }>();
  if (ips.length === 0) return out;
  const rows = sqliteStatement(
    sqlite,
    `select r.ip, r.reports, r.weight from json_each(?) as j
      join reputation_reporters as r on r.ip = j.value and r.reporter_id = ?`,
  )
    .raw()
    .all(JSON.stringify(ips), reporterId) as [string, number, number][];
  for (const [ip, reports, weight] of rows) out.set(ip, { reports: Number(reports), weight: Number(weight) });
  return out;
}

/** What the single write and the score need of an existing reputation row. */
export interface BulkReputationBefore {
  /** SQLite's rowid of the row: the update goes straight to the table B-tree, not through the ip index. */
  readonly rowid: number;
  readonly score: number;
  readonly maxSeverity: number;
  readonly sessions: number;
  readonly contributorWeight: number;
}

/** The existing reputation rows of `ips` (absent: no row yet), in one statement. */
export function readReputationsForBulk(
  sqlite: BetterSqlite3.Database,
  ips: readonly string[],
): Map<string, BulkReputationBefore> {
  const out = new Map<string, BulkReputationBefore>();
  if (ips.length === 0) return out;
  const rows = sqliteStatement(
    sqlite,
    `select r.ip, r.rowid, r.score, r.max_severity, r.sessions, r.contributor_weight from json_each(?) as j
      join reputations as r on r.ip = j.value`,
  )
    .raw()
    .all(JSON.stringify(ips)) as [string, number, number, number, number, number][];
  for (const [ip, rowid, score, maxSeverity, sessions, contributorWeight] of rows) {
    out.set(ip, {
      rowid: Number(rowid),
      score: Number(score),
      maxSeverity: Number(maxSeverity),
      sessions: Number(sessions),
      contributorWeight: Number(contributorWeight),
    });
  }
  return out;
}

/**
 * Writes each IP's reputation row once: an existing row gets the contributor totals (the same
 * expressions as upsertContributorTotals' conflict clause) and its new score in one UPDATE; a missing row
 * is inserted complete, score included. Rows in `deltas` order (IP order walks the indexes in order).
 */
export function writeReputationsOnce(
  sqlite: BetterSqlite3.Database,
  deltas: readonly ContributorDelta[],
  before: ReadonlyMap<string, BulkReputationBefore>,
  scores: ReadonlyMap<string, { score: number; raw: number; maxSeverity: number }>,
  now: number,
): void {
  const update = sqliteStatement(
    sqlite,
    `update reputations set first_seen = min(first_seen, ?), last_seen = max(last_seen, ?),
      report_count = report_count + ?, distinct_reporters = distinct_reporters + ?,
      contributor_weight = contributor_weight + ?,
      last_reported_at = case when last_reported_at is null or last_reported_at < ? then ? else last_reported_at end,
      country_code = coalesce(country_code, ?), asn = coalesce(asn, ?), asn_org = coalesce(asn_org, ?),
      score = ?, score_raw = ?, max_severity = ?, score_updated_at = ? where rowid = ?`,
  );
  const inserts: Record<string, unknown>[] = [];
  for (const d of deltas) {
    const ip = d.ip.text;
    const computed = scores.get(ip);
    if (!computed) throw new Error(`writeReputationsOnce: no score for ${ip}`);
    const old = before.get(ip);
    if (!old) {
      inserts.push({
        ...contributorRow(d, now),
        score: computed.score,
        score_raw: computed.raw,
        max_severity: computed.maxSeverity,
      });
      continue;
    }
    update.run(
      d.firstAt,
      d.lastAt,
      d.reports,
      d.newReporters,
      d.weight,
      d.lastAt,
      d.lastAt,
      d.geo?.countryCode ?? null,
      d.geo?.asn ?? null,
      d.geo?.asnOrg ?? null,
      computed.score,
      computed.raw,
      computed.maxSeverity,
      now,
      old.rowid,
    );
  }
  sqliteInsertObjects(sqlite, 'reputations', inserts);
}

/**
 * The per-IP aggregate upserts of a bulk report (the same conflict clauses as upsertReporters,
 * upsertCategories, upsertDayReports and upsertReportProtocols): reporter rows carry a float weight, so
 * they are bound row by row; the others hold only integers and known-safe text (IP, category name,
 * validated protocol) and go in one `insert … select from json_each(?)` statement each.
 */
export function upsertBulkAggregatesSqlite(
  sqlite: BetterSqlite3.Database,
  aggregates: {
    readonly reporters: readonly ReporterDelta[];
    readonly categories: readonly { ip: string; category: string; count: number }[];
    readonly days: readonly { ip: string; day: number; reports: number }[];
    readonly protocols: readonly { ip: string; protocol: string; events: number }[];
  },
): void {
  const reporter = sqliteStatement(
    sqlite,
    `insert into reputation_reporters (ip, reporter_id, reports, weight, first_reported_at, last_reported_at)
      values (?, ?, ?, ?, ?, ?) ${REPORTER_CONFLICT}`,
  );
  for (const d of aggregates.reporters) {
    reporter.run(d.ip, d.reporterId, d.reports, d.weight, d.firstReportedAt, d.lastReportedAt);
  }
  const fromJson = (table: string, columns: string, conflict: string, rows: unknown[][]) => {
    if (rows.length === 0) return;
    const picks = columns
      .split(', ')
      .map((_, i) => `j.value ->> ${i}`)
      .join(', ');
    // `where true` keeps SQLite from reading ON CONFLICT as a join constraint of the SELECT.
    sqliteStatement(
      sqlite,
      `insert into ${table} (${columns}) select ${picks} from json_each(?) as j where true ${conflict}`,
    ).run(JSON.stringify(rows));
  };
  fromJson(
    'reputation_categories',
    'ip, category, count',
    'on conflict (ip, category) do update set count = reputation_categories.count + excluded.count',
    aggregates.categories.map((d) => [d.ip, d.category, d.count]),
  );
  fromJson(
    'reputation_days',
    'ip, day, reports, sessions, events',
    'on conflict (ip, day) do update set reports = reputation_days.reports + excluded.reports',
    aggregates.days.map((d) => [d.ip, d.day, d.reports, 0, 0]),
  );
  fromJson(
    'reputation_protocols',
    'ip, protocol, sessions, events',
    'on conflict (ip, protocol) do update set events = reputation_protocols.events + excluded.events',
    aggregates.protocols.map((d) => [d.ip, d.protocol, 0, d.events]),
  );
}
