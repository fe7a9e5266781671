// QuotaCounter backed by the database's usage table (the default when no Redis is configured).
import { COUNTERS, type Counter } from '../core/tiers.js';
import { utcDay } from '../core/time.js';
import type { DbExecutor } from '../store/database.js';
import type { Store } from '../store/store.js';
import { consumeAll, consumeUpTo, refund, usageForDay } from '../store/usage-repository.js';
import type { QuotaCounter, QuotaOutcome, QuotaRequest } from './quota-counter.js';

export class StoreQuotaCounter implements QuotaCounter {
  readonly transactional = true;

  constructor(private readonly store: Store) {}

  async consume(request: QuotaRequest, tx?: DbExecutor): Promise<QuotaOutcome> {
    const key = { keyId: request.keyId, counter: request.counter, day: utcDay(request.now) };
    if (!request.partial) {
      const result = await consumeAll(tx ?? this.store.db, key, request.units, request.limit);
      return { granted: result.granted ? request.units : 0, used: result.used, limit: request.limit };
    }
    const run = (executor: DbExecutor) =>
      consumeUpTo(executor, this.store.dialect, key, request.units, request.limit);
    const result = tx ? await run(tx) : await this.store.transaction(run);
    return { granted: result.granted, used: result.used, limit: request.limit };
  }

  async refund(keyId: string, counter: Counter, units: number, now: number): Promise<void> {
    if (units <= 0) return;
    await refund(this.store.db, { keyId, counter, day: utcDay(now) }, units);
  }

  async usage(keyId: string, now: number): Promise<Record<Counter, number>> {
    const used = await usageForDay(this.store.db, keyId, utcDay(now));
    return Object.fromEntries(COUNTERS.map((c) => [c, used.get(c) ?? 0])) as Record<Counter, number>;
  }

  async close(): Promise<void> {}
}
