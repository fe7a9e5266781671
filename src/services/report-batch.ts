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
  writeReputationsOnce,
} from '../store/report-batch-sqlite.js';
import { type GeoLookup, NO_GEO } from './geo-lookup.js';
import { toNewReport, type ValidReport } from './report-input.js';
import type { ReputationScorer, RescoreOptions, ScoringRow } from './reputation-scoring.js';

/** What a batch of reports adds to the per-IP aggregates, one entry per conflict key, each list in IP order. */
interface ReportPlan {
  readonly ips: readonly string[];
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
  const reporters = new Map<string, ReporterDelta & { initialWeight: number; isNew: boolean }>();
  const totals = new Map<string, ContributorDelta>();
  const categories = new Map<string, { ip: string; category: string; count: number }>();
  const days = new Map<string, { ip: string; day: number; reports: number }>();
  const protocols = new Map<string, { ip: string; protocol: string; events: number }>();

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
    if (report.protocol !== null) {
      const protocolKey = `${ip}\u0000${report.protocol}`;
      const protocolEntry = protocols.get(protocolKey);
      if (protocolEntry) protocolEntry.events++;
      else protocols.set(protocolKey, { ip, protocol: report.protocol, events: 1 });
    }
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
  const byIp = <T extends { ip: string }>(list: T[]) => list.sort((a, b) => byText(a.ip, b.ip));
  return {
    ips: [...totals.keys()].sort(byText),
    reporters: byIp([...reporters.values()].map(({ initialWeight: _w, isNew: _n, ...delta }) => delta)),
    contributor: contributor.sort((a, b) => byText(a.ip.text, b.ip.text)),
    categories: byIp([...categories.values()]),
    days: byIp([...days.values()]),
    protocols: byIp([...protocols.values()]),
  };
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
  await upsertReporters(tx, plan.reporters, sqlite);
  await upsertCategories(tx, plan.categories, sqlite);
  await upsertDayReports(tx, plan.days, sqlite);
  await upsertReportProtocols(tx, plan.protocols, sqlite);
  await scorer.settleMany(tx, plan.ips, changed, now, { ...options, sqlite });
}
