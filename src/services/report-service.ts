// Accepting contributor reports (SPEC §3.3): the 15-minute merge, quota charging and the score update, in one transaction.
import type BetterSqlite3 from 'better-sqlite3';
import { reporterTrust, reporterWeight, type ScoringPolicy } from '../core/scoring.js';
import { utcDay } from '../core/time.js';
import type { QuotaCounter, QuotaOutcome } from '../quota/quota-counter.js';
import { hasPendingReportSqlite } from '../store/pending-reports-repository.js';
import { hasRecentReport, insertReport } from '../store/reports-repository.js';
import {
  addCategories,
  addContributorTotals,
  addDayCounts,
  addReporterReport,
  addReportProtocol,
  getReputation,
  lockIp,
  touchReputation,
} from '../store/reputation-repository.js';
import type { Store } from '../store/store.js';
import type { BulkReportQueue } from './bulk-report-queue.js';
import { type GeoLookup, NO_GEO } from './geo-lookup.js';
import type { AuthenticatedKey } from './key-service.js';
import { applyAndScoreSqlite, applyReports } from './report-batch.js';
import { toNewReport, type ValidReport } from './report-input.js';
import type { ReputationScorer, RescoreOptions } from './reputation-scoring.js';

export const MERGE_WINDOW_MS = 15 * 60_000;

export type ReportOutcome =
  | { status: 'accepted'; ip: string; confidenceLevel: number; quota: QuotaOutcome }
  | { status: 'duplicate'; ip: string; confidenceLevel: number; quota: QuotaOutcome }
  | { status: 'quota_exceeded'; ip: string; quota: QuotaOutcome };

class QuotaDenied extends Error {
  constructor(readonly quota: QuotaOutcome) {
    super('quota exceeded');
  }
}

export class ReportService {
  constructor(
    private readonly store: Store,
    private readonly quota: QuotaCounter,
    private readonly scorer: ReputationScorer,
    private readonly policy: ScoringPolicy,
    private readonly geo: GeoLookup = NO_GEO,
    /** Bulk rows accepted and not yet applied (decision 0853): applied first, and part of the merge. */
    private readonly pending: Pick<BulkReportQueue, 'has' | 'settle'> | null = null,
  ) {}

  /** The key's reporter trust at `now` (SPEC §5 item 8): what each of its reports weighs. */
  trustOf(key: AuthenticatedKey, now: number): number {
    return reporterTrust(
      key.trust,
      key.tier.id === 'unlimited' ? Infinity : now - key.createdAt,
      this.policy,
    );
  }

  /**
   * Stores one validated report for `key` at time `now`. A repeat of the same key, IP and category
   * within 15 minutes (server time) is merged: nothing stored, nothing charged. Otherwise one
   * `reports` unit is charged and the report, aggregates and score commit together.
   */
  async report(key: AuthenticatedKey, report: ValidReport, now: number): Promise<ReportOutcome> {
    const limit = key.limits.reports;
    const ip = report.ip.text;
    const primary = report.categories[0] ?? 'other';
    let charged = 0;
    // This process's own accepted bulk rows for the IP are applied first: the score answered includes them.
    if (this.pending?.has(ip)) await this.pending.settle();
    const sqlite = this.store.dialect === 'sqlite' ? this.store.sqlite : null;
    try {
      return await this.store.transaction(async (tx) => {
        await lockIp(tx, this.store.dialect, ip);
        const since = now - MERGE_WINDOW_MS;
        if (
          (await hasRecentReport(tx, key.id, ip, primary, since)) ||
          (sqlite !== null && hasPendingReportSqlite(sqlite, key.id, ip, primary, since))
        ) {
          const row = await getReputation(tx, ip);
          const quota = await this.quota.consume(
            { keyId: key.id, counter: 'reports', units: 0, limit, now, partial: false },
            tx,
          );
          return { status: 'duplicate' as const, ip, confidenceLevel: row ? row.score : 0, quota };
        }
        const quota = await this.quota.consume(
          { keyId: key.id, counter: 'reports', units: 1, limit, now, partial: false },
          tx,
        );
        if (quota.granted === 0) throw new QuotaDenied(quota);
        charged = this.quota.transactional ? 0 : 1;
        await this.apply(tx, key, report, now);
        const confidenceLevel = await this.scorer.rescore(tx, ip, now);
        return { status: 'accepted' as const, ip, confidenceLevel, quota };
      });
    } catch (error) {
      if (charged > 0) await this.quota.refund(key.id, 'reports', charged, now);
      if (error instanceof QuotaDenied) return { status: 'quota_exceeded', ip, quota: error.quota };
      throw error;
    }
  }

  /** Writes one report and its aggregate updates; the caller owns the transaction and the rescore. */
  async apply(
    tx: Parameters<Parameters<Store['transaction']>[0]>[0],
    key: AuthenticatedKey,
    report: ValidReport,
    now: number,
  ): Promise<void> {
    const ip = report.ip.text;
    await touchReputation(tx, report.ip, report.reportedAt, now, this.geo.lookup(report.ip));
    await insertReport(tx, toNewReport(report, key.id, now));
    const trust = this.trustOf(key, now);
    const { newReporter, weightDelta } = await addReporterReport(
      tx,
      ip,
      key.id,
      report.reportedAt,
      (reports) => reporterWeight(reports, trust, this.policy),
    );
    await addCategories(tx, ip, report.categories);
    if (report.protocol !== null) await addReportProtocol(tx, ip, report.protocol);
    await addDayCounts(tx, ip, utcDay(report.reportedAt), { reports: 1 });
    await addContributorTotals(tx, ip, {
      reports: 1,
      newReporters: newReporter ? 1 : 0,
      weight: weightDelta,
      reportedAt: report.reportedAt,
    });
  }

  /**
   * The set-based form of `apply` for many reports by one key (bulk report): same aggregates, a few
   * statements per 500 rows. The caller owns the transaction, the IP locks and the rescore.
   */
  async applyMany(
    tx: Parameters<Parameters<Store['transaction']>[0]>[0],
    key: AuthenticatedKey,
    reports: readonly ValidReport[],
    now: number,
    /** The store's raw SQLite connection to write through prepared statements (SQLite only). */
    sqlite: BetterSqlite3.Database | null = null,
  ): Promise<void> {
    const trust = this.trustOf(key, now);
    await applyReports(tx, key.id, trust, this.policy, reports, now, sqlite, this.geo);
  }

  /**
   * applyMany followed by the scorer's rescoreMany of the same IPs, in one pass on SQLite's raw
   * connection (each reputation row written once, decision 0852); stores what those two calls store.
   */
  async applyAndScoreMany(
    tx: Parameters<Parameters<Store['transaction']>[0]>[0],
    key: AuthenticatedKey,
    reports: readonly ValidReport[],
    now: number,
    sqlite: BetterSqlite3.Database,
    options: RescoreOptions,
  ): Promise<void> {
    const trust = this.trustOf(key, now);
    await applyAndScoreSqlite(
      tx,
      sqlite,
      this.scorer,
      key.id,
      trust,
      this.policy,
      reports,
      now,
      this.geo,
      options,
    );
  }
}
