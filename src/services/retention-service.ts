// Retention (SPEC §6): raw telemetry by age, reputation by inactivity, in small batches that never stall requests.
import { DAY_MS, utcDay } from '../core/time.js';
import type { DbExecutor } from '../store/database.js';
import {
  DAYS_AHEAD,
  dropPartitionsBefore,
  ensurePartitions,
  PARTITIONED_TABLES,
} from '../store/partitions.js';
import {
  countRawBefore,
  countStaleLookups,
  countStaleReputations,
  deleteRawBatch,
  deleteStaleLookupBatch,
  deleteStaleReputations,
  LOOKUP_TABLES,
  staleReputationIps,
} from '../store/retention-repository.js';
import type { Store } from '../store/store.js';
import type { Job } from './jobs.js';

/**
 * Called inside the purge transaction with the IPs being removed (after their child rows and
 * reputation rows are deleted). Features with per-IP state that is not a plain child table register
 * one: TAXII records a revocation, sensor aggregates drop their rows.
 */
export type PurgeHook = (tx: DbExecutor, ips: readonly string[], now: number) => Promise<void>;

export interface RetentionResult {
  readonly dryRun: boolean;
  /** Raw rows on a UTC day before this one are removed (days since the epoch). */
  readonly telemetryCutoffDay: number;
  /** Reputations last seen before this instant (epoch ms) are removed. */
  readonly reputationCutoff: number;
  /** Raw rows removed (or that would be) per table. */
  readonly telemetry: Record<string, number>;
  /** Whole daily partitions dropped (PostgreSQL). */
  readonly partitionsDropped: number;
  readonly reputations: number;
  /** Username and e-mail look-up rows (global, not per IP) last seen before `reputationCutoff`. */
  readonly lookups: Record<string, number>;
}

export interface RetentionOptions {
  readonly retentionDays: number;
  /** Rows or IPs per statement/transaction. */
  readonly batchSize?: number;
  /** Pause between batches so request traffic gets the database (SQLite has one writer). */
  readonly pauseMs?: number;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class RetentionService {
  private readonly hooks: PurgeHook[] = [];
  private readonly batchSize: number;
  private readonly pauseMs: number;

  constructor(
    private readonly store: Store,
    private readonly options: RetentionOptions,
  ) {
    this.batchSize = options.batchSize ?? 1000;
    this.pauseMs = options.pauseMs ?? 5;
  }

  /** Adds a per-IP purge hook; see PurgeHook. */
  onPurge(hook: PurgeHook): void {
    this.hooks.push(hook);
  }

  /**
   * PostgreSQL: creates the daily partitions of raw tables for the retention window and
   * DAYS_AHEAD days ahead (idempotent). SQLite: nothing. Returns the partitions created.
   */
  async preparePartitions(now: number): Promise<string[]> {
    if (this.store.dialect !== 'postgres') return [];
    const today = utcDay(now);
    const created: string[] = [];
    for (const { table, column } of PARTITIONED_TABLES) {
      created.push(
        ...(await ensurePartitions(
          this.store.db,
          table,
          column,
          today - this.options.retentionDays,
          today + DAYS_AHEAD,
        )),
      );
    }
    return created;
  }

  /** One retention pass at `now`. With `dryRun` it only counts what it would remove. */
  async run(now: number, dryRun = false): Promise<RetentionResult> {
    const days = this.options.retentionDays;
    const telemetryCutoffDay = utcDay(now) - days;
    const reputationCutoff = now - days * DAY_MS;
    const telemetry: Record<string, number> = {};
    let partitionsDropped = 0;
    const { db, dialect } = this.store;

    if (!dryRun) await this.preparePartitions(now);
    for (const { table, column } of PARTITIONED_TABLES) {
      let removed = 0;
      if (dialect === 'postgres') {
        const dropped = await dropPartitionsBefore(db, table, telemetryCutoffDay, dryRun);
        partitionsDropped += dropped.length;
        removed += dropped.reduce((sum, p) => sum + p.rows, 0);
      }
      if (dryRun) {
        removed += await countRawBefore(db, dialect, table, column, telemetryCutoffDay);
      } else {
        for (;;) {
          const n = await deleteRawBatch(db, dialect, table, column, telemetryCutoffDay, this.batchSize);
          removed += n;
          if (n < this.batchSize) break;
          await pause(this.pauseMs);
        }
      }
      telemetry[table] = removed;
    }

    let reputations = 0;
    if (dryRun) {
      reputations = await countStaleReputations(db, reputationCutoff);
    } else {
      let after = '';
      for (;;) {
        const candidates = await staleReputationIps(db, reputationCutoff, this.batchSize, after);
        if (candidates.length === 0) break;
        after = candidates[candidates.length - 1] ?? after;
        reputations += await this.store.transaction(async (tx) => {
          const gone = await deleteStaleReputations(tx, dialect, candidates, reputationCutoff);
          for (const hook of this.hooks) if (gone.length > 0) await hook(tx, gone, now);
          return gone.length;
        });
        if (candidates.length < this.batchSize) break;
        await pause(this.pauseMs);
      }
    }
    const lookups: Record<string, number> = {};
    for (const target of LOOKUP_TABLES) {
      let removed = 0;
      if (dryRun) {
        removed = await countStaleLookups(db, target, reputationCutoff);
      } else {
        for (;;) {
          const n = await deleteStaleLookupBatch(db, target, reputationCutoff, this.batchSize);
          removed += n;
          if (n < this.batchSize) break;
          await pause(this.pauseMs);
        }
      }
      lookups[target.table] = removed;
    }
    return {
      dryRun,
      telemetryCutoffDay,
      reputationCutoff,
      telemetry,
      partitionsDropped,
      reputations,
      lookups,
    };
  }

  /** The daily job for the JobRunner. */
  job(): Job {
    return { name: 'retention', intervalMs: DAY_MS, run: (now) => this.run(now) };
  }
}
