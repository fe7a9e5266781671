// The QuotaCounter interface: per key, per counter, per UTC day usage with exact check-and-increment (SPEC §2.3).
import type { Counter } from '../core/tiers.js';
import type { DbExecutor } from '../store/database.js';

export interface QuotaRequest {
  readonly keyId: string;
  readonly counter: Counter;
  readonly units: number;
  /** Daily limit for this key and counter; null means unlimited (usage is still counted). */
  readonly limit: number | null;
  /** The instant of the request (epoch ms); selects the UTC day. */
  readonly now: number;
  /** false: all units or none. true: as many as fit (blacklists cut to what is left). */
  readonly partial: boolean;
}

export interface QuotaOutcome {
  /** Units charged: `units` or 0 when not partial; 0…units when partial. */
  readonly granted: number;
  /** Units used today after this request. */
  readonly used: number;
  readonly limit: number | null;
}

export interface QuotaCounter {
  /**
   * Charges units atomically across every process sharing the backing store. When `tx` is given
   * and the counter lives in the same database, the charge commits or rolls back with it.
   */
  consume(request: QuotaRequest, tx?: DbExecutor): Promise<QuotaOutcome>;
  /**
   * Synchronous fast path: charges one unit from units this process already holds (decision 0006),
   * or returns undefined when the caller must use `consume`. Only counters that reserve implement it.
   */
  consumeReserved?(request: QuotaRequest): QuotaOutcome | undefined;
  /** Returns units charged for work that did not happen. */
  refund(keyId: string, counter: Counter, units: number, now: number): Promise<void>;
  /** Today's usage for every counter of a key. */
  usage(keyId: string, now: number): Promise<Record<Counter, number>>;
  /** True when refunds and charges share the caller's database transaction. */
  readonly transactional: boolean;
  close(): Promise<void>;
}
