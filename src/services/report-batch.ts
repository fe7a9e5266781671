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
  upsertReportProtocols,
} from '../store/report-batch-repository.js';
import {
  insertReportsSqlite,
  readReputationsForBulk,
  reporterRowsSqlite,
  upsertBulkAggregatesSqlite,
  writeReputationsOnce,
} from '../store/report-batch-sqlite.js';
import { type GeoLookup, NO_GEO } from './geo-lookup.js';
import { toNewReport, type ValidReport } from './report-input.js';
import type { ReputationScorer, RescoreOptions, ScoringRow } from './reputation-scoring.js';

/** What a batch of reports adds to the per-IP aggregates, one entry per conflict key, each list in IP order. */
interface ReportPlan {
  readonly ips: string[];
  readonly reporters: ReporterDelta[];
  readonly contributor: ContributorDelta[];
  readonly categories: { ip: string; category: string; count: number }[];
  readonly days: { ip: string; day: number; reports: number }[];
  /** Reports naming a protocol add to that protocol's `events` (decision 0601), as ReportService.apply does. */
  readonly protocols: { ip: string; protocol: string; events: number }[];
}

const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Sums `reports` (in order) by one reporter with trust `trust` into exactly the aggregate changes that
 * applying them one by one with ReportService.apply would make: first/last seen widened, one reporter row
 * per IP whose weight follows the same ramp and is never lowered, each category counted once per report,
 * day counts by reportedAt day, protocol events, last_reported_at the maximum. `stored` holds this
 * reporter's existing rows for the IPs.
 */
function planReports(
  keyId: string,
  trust: number,
  policy: ScoringPolicy,
  reports: readonly ValidReport[],
  stored: ReadonlyMap<string, { reports: number; weight: number }>,
  geo: GeoLookup,
): ReportPlan {
  // A stable sort by IP: each IP's reports stay in request order (the reporter's weight ramp and first
  // report time depend on it), and every list below comes out in IP order without sorting it again.
  const ordered = [...reports].sort((a, b) => byText(a.ip.text, b.ip.text));
  const plan: ReportPlan = {
    ips: [],
    reporters: [],
    contributor: [],
    categories: [],
    days: [],
    protocols: [],
  };
  const categories = new Map<string, number>();
  const days = new Map<number, number>();
  const protocols = new Map<string, number>();
  for (let start = 0; start < ordered.length; ) {
    const first = ordered[start] as ValidReport;
    const ip = first.ip.text;
    let end = start + 1;
    while (end < ordered.length && (ordered[end] as ValidReport).ip.text === ip) end++;

    const existing = stored.get(ip);
    const initialWeight = existing?.weight ?? 0;
    let count = existing?.reports ?? 0;
    let weight = initialWeight;
    let firstAt = first.reportedAt;
    let lastAt = first.reportedAt;
    categories.clear();
    days.clear();
    protocols.clear();
    for (let i = start; i < end; i++) {
      const report = ordered[i] as ValidReport;
      const at = report.reportedAt;
      count++;
      // A new reporter starts at the ramp's first weight; later reports never lower it (SPEC §5 item 8).
      weight =
        count === 1
          ? reporterWeight(1, trust, policy)
          : Math.max(weight, reporterWeight(count, trust, policy));
      if (at < firstAt) firstAt = at;
      if (at > lastAt) lastAt = at;
      // Each category once per report (validated reports list each once already).
      const list = report.categories.length > 1 ? new Set(report.categories) : report.categories;
      for (const category of list) categories.set(category, (categories.get(category) ?? 0) + 1);
      const day = utcDay(at);
      days.set(day, (days.get(day) ?? 0) + 1);
      if (report.protocol !== null) protocols.set(report.protocol, (protocols.get(report.protocol) ?? 0) + 1);
    }
    const added = end - start;
    plan.ips.push(ip);
    plan.reporters.push({
      ip,
      reporterId: keyId,
      reports: added,
      weight,
      firstReportedAt: first.reportedAt,
      lastReportedAt: lastAt,
    });
    plan.contributor.push({
      ip: first.ip,
      firstAt,
      lastAt,
      reports: added,
      newReporters: existing === undefined ? 1 : 0,
      weight: weight - initialWeight,
      geo: geo.lookup(first.ip as IpAddress),
    });
    for (const [category, n] of categories) plan.categories.push({ ip, category, count: n });
    for (const [day, n] of days) plan.days.push({ ip, day, reports: n });
    for (const [protocol, n] of protocols) plan.protocols.push({ ip, protocol, events: n });
    start = end;
  }
  return plan;
}

/**
 * Writes `reports` (in order) by one reporter with trust `trust`, with exactly the aggregates that applying
 * them one by one with ReportService.apply would leave (see planReports). The caller holds the IP locks
 * and rescores. `sqlite` (the raw connection `tx` is on, SQLite only) writes row by row through prepared
 * statements.
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
  const plan = planReports(keyId, trust, policy, reports, await reporterRows(tx, keyId, ips), geo);
  await upsertContributorTotals(tx, plan.contributor, now, sqlite);
  await upsertReporters(tx, plan.reporters, sqlite);
  await upsertCategories(tx, plan.categories, sqlite);
  await upsertDayReports(tx, plan.days, sqlite);
  await upsertReportProtocols(tx, plan.protocols, sqlite);
}

/**
 * applyReports followed by ReputationScorer.rescoreMany, in one pass on SQLite's raw connection (decision
 * 0852): the IPs' rows are read first (only the columns the update and the score need), the new aggregates
 * and scores computed in memory, and each reputation row written ONCE (aggregates and score together)
 * instead of an upsert and then a score update, so each of its indexes changes at most once. Stores exactly
 * what applyReports + rescoreMany store; the listeners run (or, with `defer`, record) as rescoreMany's do.
 */
export async function applyAndScoreSqlite(
  tx: DbExecutor,
  sqlite: BetterSqlite3.Database,
  scorer: ReputationScorer,
  keyId: string,
  trust: number,
  policy: ScoringPolicy,
  reports: readonly ValidReport[],
  now: number,
  geo: GeoLookup,
  options: RescoreOptions,
): Promise<void> {
  if (reports.length === 0) return;
  insertReportsSqlite(sqlite, reports, keyId, now);
  const distinct = [...new Set(reports.map((r) => r.ip.text))];
  const plan = planReports(keyId, trust, policy, reports, reporterRowsSqlite(sqlite, keyId, distinct), geo);
  const before = readReputationsForBulk(sqlite, plan.ips);

  const scoring: ScoringRow[] = plan.contributor.map((delta) => {
    const old = before.get(delta.ip.text);
    return {
      ip: delta.ip.text,
      ip_key: delta.ip.key,
      ip_version: delta.ip.version,
      sessions: old ? old.sessions : 0,
      // The same double addition the upsert's `contributor_weight + excluded.contributor_weight` does.
      contributor_weight: old ? old.contributorWeight + delta.weight : delta.weight,
    };
  });
  const scores = await scorer.scoreMany(tx, scoring, sqlite);
  const changed: { ip: string; score: number; before: number }[] = [];
  for (const delta of plan.contributor) {
    const ip = delta.ip.text;
    const computed = scores.get(ip);
    const old = before.get(ip);
    if (!computed) continue;
    const priorScore = old ? old.score : 0;
    if (computed.score !== priorScore || computed.maxSeverity !== (old ? old.maxSeverity : 0)) {
      changed.push({ ip, score: computed.score, before: priorScore });
    }
  }
  writeReputationsOnce(sqlite, plan.contributor, before, scores, now);
  upsertBulkAggregatesSqlite(sqlite, plan);
  await scorer.settleMany(tx, plan.ips, changed, now, { ...options, sqlite });
}
