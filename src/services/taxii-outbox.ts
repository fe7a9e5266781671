// Deferred TAXII publishing (decision 0852): a bulk report marks the IPs it rescored; the publisher drains the marks.
import type BetterSqlite3 from 'better-sqlite3';
import { sql } from 'kysely';
import type { DbExecutor } from '../store/database.js';
import {
  clearPendingTaxii,
  markPendingTaxii,
  readPendingTaxii,
  readPendingTaxiiFor,
} from '../store/pending-taxii-repository.js';
import { getReputations, lockIps } from '../store/report-batch-repository.js';
import type { ReputationRow } from '../store/reputation-repository.js';
import type { Store } from '../store/store.js';
import { DrainRunner, type DrainRunnerOptions, yieldToRequests } from './drain-runner.js';
import type { TaxiiService } from './taxii-service.js';

/** Marks published per transaction (oldest first): ~30 ms of synchronous work on SQLite (see BENCHMARKS.md). */
export const OUTBOX_CHUNK = 500;

/** Serialises drains across processes on PostgreSQL (SQLite's write lock already does). */
const PUBLISHER_LOCK = 'taxii-outbox';

/**
 * The outbox between bulk reports and the TAXII feed. `mark` runs inside the report's transaction, so a
 * committed report always leaves its marks and a rolled-back one none. `drain` publishes the pending IPs,
 * oldest marks first, OUTBOX_CHUNK per transaction, from their current reputation rows with
 * `TaxiiService.publishMany`, and clears those marks in the same transaction: a crash before a commit
 * leaves that chunk's marks for the next drain, and a repeated drain finds nothing. Publishing reads the
 * current row and the latest stored version, so an IP published meanwhile (a single report, another
 * drain) gets no duplicate version.
 */
export class TaxiiOutbox {
  private readonly runner = new DrainRunner(
    async () => {
      await this.upstream?.();
      // Chunks of the oldest marks, a turn of the event loop between: SQLite work is synchronous, and
      // 10,000 versions in one transaction held every other request ~0.5-0.7 s.
      while ((await this.publishPending()) === OUTBOX_CHUNK) await yieldToRequests();
      // Bulk reports commit without SQLite's automatic checkpoint; it runs here, after their responses.
      await this.store.checkpoint();
    },
    { quietMs: 20, maxLagMs: 500 },
  );

  constructor(
    private readonly store: Store,
    private readonly taxii: TaxiiService,
    /** Run before each drain: what marks IPs later (accepted bulk rows not yet applied, decision 0853). */
    private readonly upstream: (() => Promise<void>) | null = null,
  ) {}

  /** Marks `ips` pending as of `now` inside `tx` (`sqlite`: the raw connection `tx` is on). */
  async mark(
    tx: DbExecutor,
    ips: readonly string[],
    now: number,
    sqlite: BetterSqlite3.Database | null = null,
  ): Promise<void> {
    await markPendingTaxii(
      tx,
      ips.map((ip) => ({ ip, now })),
      sqlite,
    );
  }

  /**
   * Publishes every pending IP; resolves when nothing marked before the call is still pending. Calls
   * made while a drain runs share the next one.
   */
  drain(): Promise<void> {
    return this.runner.drain();
  }

  /**
   * Runs the publisher in this process: now, after each `wake()` (a bulk report committed marks) once
   * `quietMs` passed without another, but at most `maxLagMs` after the first, and every `intervalMs` as
   * a safety net (marks left by a crashed process or another worker). Failures go to `onError` and are
   * retried on the next wake or tick.
   */
  start(options: DrainRunnerOptions = {}): void {
    this.runner.start(options);
  }

  /** Stops the runner and waits for a drain in progress. */
  stop(): Promise<void> {
    return this.runner.stop();
  }

  /** Tells the runner (if started) that marks were committed. */
  wake(): void {
    this.runner.wake();
  }

  /**
   * One transaction: publish the OUTBOX_CHUNK oldest pending IPs and clear their marks. Returns how many
   * marks it took.
   */
  private async publishPending(): Promise<number> {
    const dialect = this.store.dialect;
    return this.store.transaction(async (tx) => {
      // One publisher at a time in the cluster; taken before the IP locks and the feed clock (lock order:
      // publisher → IPs → clock; reports take IPs → clock, so no cycle).
      if (dialect === 'postgres') {
        await sql`select pg_advisory_xact_lock(hashtextextended(${PUBLISHER_LOCK}, 7462))`.execute(tx);
      }
      let marks = await readPendingTaxii(tx, OUTBOX_CHUNK);
      if (marks.length === 0) return 0;
      const taken = marks.length;
      const ips = marks.map((mark) => mark.ip);
      await lockIps(tx, dialect, ips);
      if (dialect === 'postgres') {
        // A report may have moved a mark's time between the read and the locks: read them again.
        marks = await readPendingTaxiiFor(tx, ips);
      }
      const rows = await getReputations(tx, ips);
      // Published per report time, oldest first (as the reports would have published them in their own
      // transactions: commit order, IP order within one), so `modified` is when the score changed. An IP
      // marked by several reports before this drain has one mark, with the latest time: one version.
      // A purged IP has no row (retention revoked its indicator already): only its mark is cleared.
      const byTime = new Map<number, ReputationRow[]>();
      for (const mark of marks) {
        const row = rows.get(mark.ip);
        if (!row) continue;
        const group = byTime.get(mark.now);
        if (group) group.push(row);
        else byTime.set(mark.now, [row]);
      }
      for (const now of [...byTime.keys()].sort((a, b) => a - b)) {
        await this.taxii.publishMany(tx, byTime.get(now) ?? [], now);
      }
      await clearPendingTaxii(tx, ips);
      return taken;
    });
  }
}
