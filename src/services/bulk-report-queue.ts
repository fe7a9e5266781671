// Bulk reports applied after the answer (decision 0853): the request stores its rows as pending, this applies them.
import type { Category } from '../core/categories.js';
import { parseIp } from '../core/ip.js';
import type { ScoringPolicy } from '../core/scoring.js';
import {
  deletePendingReportsSqlite,
  type PendingReportRow,
  pendingIpsSqlite,
  readPendingReportsSqlite,
} from '../store/pending-reports-repository.js';
import type { Store } from '../store/store.js';
import { DrainRunner, type DrainRunnerOptions, yieldToRequests } from './drain-runner.js';
import type { GeoLookup } from './geo-lookup.js';
import { applyAndScoreSqlite } from './report-batch.js';
import type { ValidReport } from './report-input.js';
import type { ReputationScorer } from './reputation-scoring.js';

/**
 * Pending rows applied per transaction. Applying is synchronous SQLite work (~35 ms per 1,000 rows here), so
 * a chunk is how long every other request on this process waits: a 10,000-row request in one transaction
 * stalled them ~0.35-0.6 s; in chunks of 500 with a turn of the event loop between, a check waits at most
 * ~40-55 ms (1,000: ~65-85 ms; 250: ~30 ms but drains took 10-40 % longer), same total time.
 * Feed readers still get a request's TAXII versions together: the outbox drains this queue before it
 * publishes.
 */
export const PENDING_CHUNK_ROWS = 500;

/** The report a pending row holds, as the request validated it. */
function toValidReport(row: PendingReportRow): ValidReport {
  const parsed = parseIp(row.ip);
  // Stored only after validation, so this cannot fail unless the table was edited by hand.
  if (!parsed.ok) throw new Error(`pending_reports row ${row.id}: invalid IP ${row.ip}`);
  return {
    ip: parsed.ip,
    categories: row.categories as Category[],
    protocol: row.protocol,
    comment: row.comment,
    reportedAt: row.reportedAt,
  };
}

/**
 * The queue between an accepted bulk report and its effect (SQLite). A bulk request stores its valid rows
 * in `pending_reports` in the transaction that charges the quota, and answers; `drain()` applies every
 * pending row in id order — exactly what the request would have done: the `reports` rows with the
 * request's receive time, the aggregates, each reputation row written once with its score, TAXII marks —
 * and deletes it, in the same transaction. A crash keeps the rows for the next drain; a repeated drain
 * finds nothing.
 *
 * Reads in this process never see a state without rows it acknowledged: `has(ip)` is true from inside the
 * accepting transaction until a drain has applied the IP's rows, and check, bulk check, blacklist and
 * single reports wait for `settle()` first. Other processes see the rows once a drain has committed.
 */
export class BulkReportQueue {
  /** IPs with rows accepted by this process and not yet taken by a drain. */
  private waiting = new Set<string>();
  /** IPs taken by the drain in progress, until it has applied all of its rows. */
  private applying: ReadonlySet<string> = new Set();
  private readonly runner = new DrainRunner(() => this.applyPending(), { quietMs: 20, maxLagMs: 500 });

  constructor(
    private readonly store: Store,
    private readonly scorer: ReputationScorer,
    private readonly policy: ScoringPolicy,
    private readonly geo: GeoLookup,
    /** Woken after each applied chunk: its TAXII marks are committed (decision 0852). */
    private readonly outbox: { wake(): void } | null,
  ) {}

  /** Records, inside the accepting transaction, that `ips` have rows pending (before the commit). */
  accepted(ips: Iterable<string>): void {
    for (const ip of ips) this.waiting.add(ip);
  }

  /** True while this process holds unapplied rows for `ip`. */
  has(ip: string): boolean {
    return (
      (this.waiting.size > 0 && this.waiting.has(ip)) || (this.applying.size > 0 && this.applying.has(ip))
    );
  }

  /** True when this process holds no unapplied rows. */
  get idle(): boolean {
    return this.waiting.size === 0 && this.applying.size === 0;
  }

  /**
   * Applies every pending row (of any process); resolves when nothing committed before the call is still
   * pending. Calls made while a drain runs share the next one.
   */
  drain(): Promise<void> {
    return this.runner.drain();
  }

  /** `drain()` when this process holds unapplied rows, else nothing (the read paths' guard). */
  settle(): Promise<void> {
    return this.idle ? Promise.resolve() : this.runner.drain();
  }

  /**
   * Runs the applier in the background: at once, after `wake()` (20 ms quiet, 500 ms at most) and every
   * 2 s. Rows a stopped or crashed process acknowledged count as this process's own until applied, so
   * reads here wait for them too.
   */
  start(options: DrainRunnerOptions = {}): void {
    const sqlite = this.store.sqlite;
    if (sqlite) this.accepted(pendingIpsSqlite(sqlite));
    this.runner.start(options);
  }

  /** Stops the background applier and waits for a drain in progress. */
  stop(): Promise<void> {
    return this.runner.stop();
  }

  /** A bulk request committed pending rows: apply them soon (if started). */
  wake(): void {
    this.runner.wake();
  }

  private async applyPending(): Promise<void> {
    const sqlite = this.store.sqlite;
    if (!sqlite) return;
    try {
      for (;;) {
        const applied = await this.store.transactionWithoutCheckpoint(async (tx) => {
          // Inside the transaction (the connection is ours): every IP recorded so far belongs to a
          // committed (or rolled back) request, so its rows are visible to this read.
          if (this.waiting.size > 0) {
            this.applying = new Set([...this.applying, ...this.waiting]);
            this.waiting = new Set();
          }
          const rows = readPendingReportsSqlite(sqlite, PENDING_CHUNK_ROWS);
          if (rows.length === 0) return 0;
          // One request's rows are consecutive (one transaction); apply each run of them as that request.
          for (let start = 0; start < rows.length; ) {
            const first = rows[start] as PendingReportRow;
            let end = start + 1;
            while (end < rows.length) {
              const row = rows[end] as PendingReportRow;
              if (
                row.keyId !== first.keyId ||
                row.receivedAt !== first.receivedAt ||
                row.trust !== first.trust
              ) {
                break;
              }
              end++;
            }
            await applyAndScoreSqlite(
              tx,
              sqlite,
              this.scorer,
              first.keyId,
              first.trust,
              this.policy,
              rows.slice(start, end).map(toValidReport),
              first.receivedAt,
              this.geo,
              { defer: true },
            );
            start = end;
          }
          deletePendingReportsSqlite(sqlite, (rows[rows.length - 1] as PendingReportRow).id);
          return rows.length;
        });
        if (applied > 0) this.outbox?.wake();
        if (applied < PENDING_CHUNK_ROWS) break;
        // A backlog: let waiting requests in between two chunks.
        await yieldToRequests();
      }
      this.applying = new Set();
    } catch (error) {
      // Still unapplied: readers keep waiting for the next (retried) drain.
      this.accepted(this.applying);
      this.applying = new Set();
      throw error;
    }
  }
}
