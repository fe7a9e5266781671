// The set-based form of ReportService.apply for many reports in one transaction: deltas summed in memory, written in chunks.
import type BetterSqlite3 from 'better-sqlite3';
import type { IpAddress } from '../core/ip.js';
import { reporterWeight, type ScoringPolicy } from '../core/scoring.js';
import { utcDay } from '../core/time.js';
import type { DbExecutor } from '../store/database.js';
import {
  type ContributorDelta,
  insertReports,
  type ReporterDelta,
  reporterRows,
  upsertCategories,
  upsertContributorTotals,
  upsertDayReports,
  upsertReporters,
} from '../store/report-batch-repository.js';
import { type GeoLookup, NO_GEO } from './geo-lookup.js';
import { toNewReport, type ValidReport } from './report-input.js';

/**
 * Writes `reports` (in order) by one reporter with trust `trust`, with exactly the aggregates that applying
 * them one by one with ReportService.apply would leave: first/last seen widened, one reporter row per IP
 * whose weight follows the same ramp and is never lowered, each category counted once per report, day
 * counts by reportedAt day, last_reported_at the maximum. The caller holds the IP locks and rescores.
 * `sqlite` (the raw connection `tx` is on, SQLite only) writes row by row through prepared statements.
 */
export async function applyReports(
  tx: DbExecutor,
  keyId: string,
  trust: number,
  policy: ScoringPolicy,
  reports: readonly ValidReport[],
  now: number,
  sqlite: BetterSqlite3.Database | null = null,
  geo: GeoLookup = NO_GEO,
): Promise<void> {
  if (reports.length === 0) return;
  await insertReports(
    tx,
    reports.map((report) => toNewReport(report, keyId, now)),
    sqlite,
  );

  const ips = [...new Set(reports.map((r) => r.ip.text))];
  const stored = await reporterRows(tx, keyId, ips);
  const reporters = new Map<string, ReporterDelta & { initialWeight: number; isNew: boolean }>();
  const totals = new Map<string, ContributorDelta>();
  const categories = new Map<string, { ip: string; category: string; count: number }>();
  const days = new Map<string, { ip: string; day: number; reports: number }>();

  for (const report of reports) {
    const ip = report.ip.text;
    const at = report.reportedAt;

    const previous = reporters.get(ip);
    const existing = stored.get(ip);
    const priorReports = previous ? (existing?.reports ?? 0) + previous.reports : (existing?.reports ?? 0);
    const priorWeight = previous ? previous.weight : (existing?.weight ?? 0);
    const isNew = previous ? previous.isNew : existing === undefined;
    const count = priorReports + 1;
    // A new reporter starts at the ramp's first weight; later reports never lower it (SPEC §5 item 8).
    const weight =
      count === 1
        ? reporterWeight(1, trust, policy)
        : Math.max(priorWeight, reporterWeight(count, trust, policy));
    reporters.set(ip, {
      ip,
      reporterId: keyId,
      reports: (previous?.reports ?? 0) + 1,
      weight,
      firstReportedAt: previous ? previous.firstReportedAt : at,
      lastReportedAt: previous ? Math.max(previous.lastReportedAt, at) : at,
      initialWeight: previous ? previous.initialWeight : (existing?.weight ?? 0),
      isNew,
    });

    const total = totals.get(ip);
    totals.set(ip, {
      ip: report.ip,
      firstAt: total ? Math.min(total.firstAt, at) : at,
      lastAt: total ? Math.max(total.lastAt, at) : at,
      reports: (total?.reports ?? 0) + 1,
      newReporters: 0,
      weight: 0,
    });

    for (const category of new Set(report.categories)) {
      const key = `${ip}\u0000${category}`;
      const entry = categories.get(key);
      if (entry) entry.count++;
      else categories.set(key, { ip, category, count: 1 });
    }
    const day = utcDay(at);
    const dayKey = `${ip}\u0000${day}`;
    const dayEntry = days.get(dayKey);
    if (dayEntry) dayEntry.reports++;
    else days.set(dayKey, { ip, day, reports: 1 });
  }

  const contributor: ContributorDelta[] = [];
  for (const [ip, total] of totals) {
    const reporter = reporters.get(ip);
    contributor.push({
      ...total,
      geo: geo.lookup(total.ip as IpAddress),
      newReporters: reporter?.isNew ? 1 : 0,
      weight: reporter ? reporter.weight - reporter.initialWeight : 0,
    });
  }
  // Each aggregate row is written once, so the order is free: IP order walks the primary-key B-trees
  // page after page instead of at random (about twice as fast at 10,000 rows on a large table).
  const byIp = <T extends { ip: string }>(list: T[]) =>
    list.sort((a, b) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0));
  await upsertContributorTotals(
    tx,
    contributor.sort((a, b) => (a.ip.text < b.ip.text ? -1 : a.ip.text > b.ip.text ? 1 : 0)),
    now,
    sqlite,
  );
  await upsertReporters(
    tx,
    byIp([...reporters.values()].map(({ initialWeight: _w, isNew: _n, ...delta }) => delta)),
    sqlite,
  );
  await upsertCategories(tx, byIp([...categories.values()]), sqlite);
  await upsertDayReports(tx, byIp([...days.values()]), sqlite);
}
