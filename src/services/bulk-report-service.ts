// Bulk contributor reports (SPEC §3.4): per-row validation, every valid row in one transaction, quota cut per row.
import { type ErrorCode, failure } from '../core/errors.js';
import type { QuotaCounter, QuotaOutcome } from '../quota/quota-counter.js';
import { insertPendingReportsSqlite, pendingMergeKeysSqlite } from '../store/pending-reports-repository.js';
import { lockIps, recentReportKeys } from '../store/report-batch-repository.js';
import type { Store } from '../store/store.js';
import type { BulkReportQueue } from './bulk-report-queue.js';
import type { AuthenticatedKey } from './key-service.js';
import type { RawReportFields, ValidReport } from './report-input.js';
import { validateReport } from './report-input.js';
import { MERGE_WINDOW_MS, type ReportService } from './report-service.js';
import type { ReputationScorer } from './reputation-scoring.js';

/** One bulk input row: its 1-based data row number and raw fields, or a structural error from the parser. */
export type BulkReportRow =
  | { readonly row: number; readonly fields: RawReportFields }
  | { readonly row: number; readonly ip: string; readonly error: string; readonly code: ErrorCode };

export interface BulkRowError {
  readonly row: number;
  readonly ip: string;
  readonly error: string;
  readonly code: ErrorCode;
}

export interface BulkReportOutcome {
  readonly total: number;
  /** Rows stored, plus rows merged into an identical report from the last 15 minutes (not charged). */
  readonly accepted: number;
  readonly rejected: number;
  /** Accepted rows that were merged duplicates (SPEC §3.3), so stored nothing and cost nothing. */
  readonly duplicates: number;
  readonly errors: BulkRowError[];
  readonly quota: QuotaOutcome;
}

/** Describes an IP cell for the error list without echoing long or binary junk back. */
function shownIp(value: unknown): string {
  const text = typeof value === 'string' ? value : value === undefined || value === null ? '' : String(value);
  return text.length > 64 ? `${text.slice(0, 61)}...` : text;
}

export class BulkReportService {
  constructor(
    private readonly store: Store,
    private readonly quota: QuotaCounter,
    private readonly scorer: ReputationScorer,
    private readonly reports: ReportService,
    private readonly allowlist: Parameters<typeof validateReport>[2],
    /** Write through raw prepared statements on SQLite (default); false keeps Kysely (tests compare). */
    private readonly rawSqlite = true,
    /** Woken after a commit that marked IPs for TAXII publishing (decision 0852). */
    private readonly outbox: { wake(): void } | null = null,
    /**
     * SQLite with raw statements: valid rows are stored as pending and applied by this queue after the
     * answer (decision 0853). Null: applied inside the request (PostgreSQL, and the Kysely path).
     */
    private readonly queue: BulkReportQueue | null = null,
  ) {}

  /**
   * Validates every row, then in ONE transaction: merges repeats of (key, IP, primary category) within
   * 15 minutes (including repeats inside this request), charges `reports` for the rows to store up to
   * the day's remainder (later rows get `quota_exceeded`), writes them, and rescores each IP once.
   * Either every stored row commits or none does.
   */
  async report(
    key: AuthenticatedKey,
    rows: readonly BulkReportRow[],
    now: number,
  ): Promise<BulkReportOutcome> {
    const errors: BulkRowError[] = [];
    const valid: { row: number; report: ValidReport }[] = [];
    for (const row of rows) {
      if ('error' in row) {
        errors.push({ row: row.row, ip: row.ip, error: row.error, code: row.code });
        continue;
      }
      const result = validateReport(row.fields, now, this.allowlist);
      if (result.ok) valid.push({ row: row.row, report: result.report });
      else
        errors.push({ row: row.row, ip: shownIp(row.fields.ip), error: result.message, code: result.code });
    }

    const limit = key.limits.reports;
    const sqlite = this.rawSqlite && this.store.dialect === 'sqlite' ? this.store.sqlite : null;
    const deferred = this.queue !== null ? sqlite : null;
    let charged = 0;
    let duplicates = 0;
    try {
      // The commit leaves SQLite's WAL checkpoint to the outbox runner, after the response (decision 0852).
      const quota = await this.store.transactionWithoutCheckpoint(async (tx) => {
        // Lock every IP up front in one order, before any rescore takes the TAXII clock: two bulk
        // requests sharing IPs cannot deadlock. Then everything is set-based (a few statements per 500 rows).
        const ips = [...new Set(valid.map((v) => v.report.ip.text))].sort();
        await lockIps(tx, this.store.dialect, ips);
        const since = now - MERGE_WINDOW_MS;
        const recent = await recentReportKeys(tx, key.id, ips, since);
        // Accepted rows not yet applied count for the merge as stored ones do (decision 0853).
        if (deferred) pendingMergeKeysSqlite(deferred, key.id, since, recent);

        const toStore: { row: number; report: ValidReport }[] = [];
        for (const item of valid) {
          const mergeKey = `${item.report.ip.text}\u0000${item.report.categories[0] ?? 'other'}`;
          if (recent.has(mergeKey)) {
            duplicates++;
            continue;
          }
          recent.add(mergeKey);
          toStore.push(item);
        }

        const outcome = await this.quota.consume(
          { keyId: key.id, counter: 'reports', units: toStore.length, limit, now, partial: true },
          tx,
        );
        charged = this.quota.transactional ? 0 : outcome.granted;
        const over = failure('quota_exceeded', 'The daily reports quota for this key is used up.');
        for (const item of toStore.slice(outcome.granted)) {
          errors.push({ row: item.row, ip: item.report.ip.text, error: over.message, code: over.code });
        }
        const stored = toStore.slice(0, outcome.granted);
        // SQLite (raw statements, with a queue): the rows are stored as pending, in this transaction, and
        // applied after the answer (decision 0853). Otherwise they are applied here: on SQLite through the
        // store's one connection (which this transaction holds), each reputation row written once with its
        // score (decision 0852); PostgreSQL keeps Kysely's multi-row statements and a separate rescore.
        // Either way the TAXII work is only marked and published by the outbox after the commit.
        const reports = stored.map((item) => item.report);
        if (deferred && this.queue) {
          insertPendingReportsSqlite(deferred, key.id, this.reports.trustOf(key, now), now, reports);
          this.queue.accepted(reports.map((report) => report.ip.text));
        } else if (sqlite) {
          await this.reports.applyAndScoreMany(tx, key, reports, now, sqlite, { defer: true });
        } else {
          await this.reports.applyMany(tx, key, reports, now, null);
          await this.scorer.rescoreMany(
            tx,
            reports.map((report) => report.ip.text),
            now,
            null,
            { defer: true },
          );
        }
        return outcome;
      });
      if (deferred) this.queue?.wake();
      else this.outbox?.wake();
      errors.sort((a, b) => a.row - b.row);
      return {
        total: rows.length,
        accepted: rows.length - errors.length,
        rejected: errors.length,
        duplicates,
        errors,
        quota,
      };
    } catch (error) {
      if (charged > 0) await this.quota.refund(key.id, 'reports', charged, now);
      throw error;
    }
  }
}
