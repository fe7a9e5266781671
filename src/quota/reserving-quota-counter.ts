// Per-process quota reservations (decision 0006): while a key is far from its daily limit, single-unit
// charges are served from a small block of units reserved in the shared counter, so the hot path does
// not write to the store on every request. Near the limit every charge is exact again.
import type { Counter } from '../core/tiers.js';
import { DAY_MS, utcDay } from '../core/time.js';
import type { DbExecutor } from '../store/database.js';
import type { QuotaCounter, QuotaOutcome, QuotaRequest } from './quota-counter.js';

export interface ReservationOptions {
  /** Largest block reserved at once. Default 64. */
  readonly maxBlock?: number;
  /** A block is reserved only when it would hold at least this many units; below, charges are exact. Default 8. */
  readonly minBlock?: number;
  /** A block is at most this fraction of what is left of the limit (1/64: reserving starts at 512 left). */
  readonly shareOfRemaining?: number;
  /**
   * When a block is down to this many units, a top-up is reserved in the background (never more than one
   * block held in all), so a steady stream of charges never waits for the store. Default maxBlock / 4.
   */
  readonly topUpAt?: number;
  /** Unused reserved units go back to the shared counter after this long without a charge. Default 250 ms. */
  readonly idleReturnMs?: number;
  /** Wall clock for idleness (never the request clock, which tests move across days). */
  readonly wallClock?: () => number;
}

interface Pool {
  readonly keyId: string;
  readonly counter: Counter;
  readonly day: number;
  readonly limit: number | null;
  /** Reserved units not yet handed out. */
  left: number;
  /** The shared counter's value after this process's last charge or reservation on it (null: unknown). */
  known: number | null;
  lastUsed: number;
  /** A reservation or exact charge in flight: later charges wait for it instead of reserving again. */
  busy: Promise<unknown> | null;
  /** Counts the store round trips started for this pool (reservations, charges, returns): see usage(). */
  trips: number;
}

/** Marks a store round trip in flight for `pool` (later charges wait for it; usage() re-reads after it). */
function occupy(pool: Pool, work: Promise<unknown>): void {
  pool.busy = work;
  pool.trips++;
}

/**
 * Wraps a shared QuotaCounter. Only charges of exactly one unit without a transaction and without
 * `partial` (the per-request look-up charges) use reservations; every other call goes straight through.
 *
 * Guarantees: the shared counter never exceeds a limit (reserved units are counted there when reserved),
 * so no key ever gets more than its quota across any number of processes. A process holds at most one
 * block per key and counter, returned after `idleReturnMs` without use or at close; while another
 * process holds unused units, a key close to its limit can see 429 up to that long before the shared
 * count is really exhausted. A crash loses at most one unreturned block per key (counted as used).
 * Headers and `usage()` show this process's view: the shared count minus its own unused units.
 */
export class ReservingQuotaCounter implements QuotaCounter {
  readonly transactional: boolean;
  /** By key id, then counter: the hot path looks up with the key's own id string, no composite key. */
  private readonly pools = new Map<string, Map<Counter, Pool>>();
  private readonly maxBlock: number;
  private readonly minBlock: number;
  private readonly topUpAt: number;
  private readonly share: number;
  private readonly idleReturnMs: number;
  private readonly wall: () => number;
  private readonly timer: NodeJS.Timeout;
  private readonly returning = new Set<Promise<void>>();

  constructor(
    private readonly inner: QuotaCounter,
    options: ReservationOptions = {},
  ) {
    this.transactional = inner.transactional;
    this.maxBlock = options.maxBlock ?? 64;
    this.minBlock = options.minBlock ?? 8;
    this.topUpAt = options.topUpAt ?? Math.floor(this.maxBlock / 4);
    this.share = options.shareOfRemaining ?? 1 / 64;
    this.idleReturnMs = options.idleReturnMs ?? 250;
    this.wall = options.wallClock ?? Date.now;
    this.timer = setInterval(() => this.returnIdle(), Math.max(10, Math.floor(this.idleReturnMs / 2)));
    this.timer.unref();
  }

  consumeReserved(request: QuotaRequest): QuotaOutcome | undefined {
    if (request.partial || request.units !== 1) return undefined;
    const pool = this.pools.get(request.keyId)?.get(request.counter);
    if (pool === undefined || pool.left <= 0 || pool.limit !== request.limit) return undefined;
    if (pool.day !== utcDay(request.now)) return undefined;
    return this.take(pool, request);
  }

  /** Hands out one reserved unit (pool.left > 0) and tops the block up when it runs low. */
  private take(pool: Pool, request: QuotaRequest): QuotaOutcome {
    pool.left -= 1;
    pool.lastUsed = this.wall();
    const outcome = { granted: 1, used: (pool.known ?? 0) - pool.left, limit: request.limit };
    if (pool.left <= this.topUpAt && pool.busy === null) this.topUp(pool, request.now);
    return outcome;
  }

  /**
   * Reserves, in the background, what brings the pool back to one block (the same atomic all-or-nothing
   * increment as any reservation, so the shared count includes the units before they are handed out).
   * Charges meanwhile take the units still left; one that finds none waits for this (`busy`).
   */
  private topUp(pool: Pool, now: number): void {
    const units = this.blockSize(pool) - pool.left;
    if (units < this.minBlock) return;
    const work = this.inner
      .consume({ keyId: pool.keyId, counter: pool.counter, units, limit: pool.limit, now, partial: false })
      .then(
        (reserved): Promise<void> | undefined => {
          if (reserved.granted !== units) return undefined;
          // Replaced meanwhile (new day, new limit, forgotten): these units go straight back.
          if (this.pool(pool.keyId, pool.counter) !== pool) {
            return this.returnUnits(pool.keyId, pool.counter, units, pool.day) ?? undefined;
          }
          pool.known = reserved.used;
          pool.left += units;
          return undefined;
        },
        // Store down: nothing was reserved; the next charge without units takes the exact path.
        () => undefined,
      )
      .then(() => {
        pool.busy = null;
      });
    occupy(pool, work);
  }

  private pool(keyId: string, counter: Counter): Pool | undefined {
    return this.pools.get(keyId)?.get(counter);
  }

  private setPool(pool: Pool): void {
    let byCounter = this.pools.get(pool.keyId);
    if (byCounter === undefined) {
      byCounter = new Map();
      this.pools.set(pool.keyId, byCounter);
    }
    byCounter.set(pool.counter, pool);
  }

  private deletePool(pool: Pool): void {
    const byCounter = this.pools.get(pool.keyId);
    if (byCounter?.get(pool.counter) !== pool) return;
    byCounter.delete(pool.counter);
    if (byCounter.size === 0) this.pools.delete(pool.keyId);
  }

  private allPools(): Pool[] {
    const all: Pool[] = [];
    for (const byCounter of this.pools.values()) all.push(...byCounter.values());
    return all;
  }

  consume(request: QuotaRequest, tx?: DbExecutor): Promise<QuotaOutcome> {
    if (tx !== undefined || request.partial || request.units !== 1) return this.passThrough(request, tx);
    const day = utcDay(request.now);
    let pool = this.pool(request.keyId, request.counter);
    let returning: Promise<unknown> | null = null;
    if (pool !== undefined && (pool.day !== day || pool.limit !== request.limit)) {
      // A top-up in flight for the old pool returns its units itself once it lands.
      const inFlight = pool.busy;
      const given = this.giveBack(pool);
      returning = inFlight === null ? given : Promise.all([given, inFlight]);
      this.deletePool(pool);
      pool = undefined;
    }
    if (pool === undefined) {
      pool = {
        keyId: request.keyId,
        counter: request.counter,
        day,
        limit: request.limit,
        left: 0,
        known: null,
        lastUsed: this.wall(),
        busy: null,
        trips: 0,
      };
      this.setPool(pool);
      if (returning !== null) {
        // The next charge must see the old units returned (a lowered limit, another day's block).
        const fresh = pool;
        occupy(
          fresh,
          returning.then(() => {
            fresh.busy = null;
          }),
        );
      }
    }
    pool.lastUsed = this.wall();
    if (pool.left > 0) return Promise.resolve(this.take(pool, request));
    return this.refill(pool, request);
  }

  /** No reserved unit left: wait for a charge in flight, else reserve a block or charge exactly. */
  private async refill(pool: Pool, request: QuotaRequest): Promise<QuotaOutcome> {
    while (pool.busy !== null) {
      await pool.busy;
      if (pool.left > 0) {
        pool.left -= 1;
        return { granted: 1, used: (pool.known ?? 0) - pool.left, limit: request.limit };
      }
    }
    const block = this.blockSize(pool);
    const work = (async (): Promise<QuotaOutcome> => {
      if (block > 1) {
        const reserved = await this.inner.consume({ ...request, units: block, partial: false });
        if (reserved.granted === block) {
          pool.known = reserved.used;
          pool.left = block - 1;
          return { granted: 1, used: reserved.used - pool.left, limit: request.limit };
        }
      }
      const exact = await this.inner.consume(request);
      pool.known = exact.used;
      return exact;
    })();
    occupy(pool, work);
    try {
      return await work;
    } finally {
      pool.busy = null;
    }
  }

  private blockSize(pool: Pool): number {
    if (pool.known === null) return 1; // learn the shared count first
    if (pool.limit === null) return this.maxBlock;
    const block = Math.min(this.maxBlock, Math.floor((pool.limit - pool.known) * this.share));
    return block >= this.minBlock ? block : 1;
  }

  private async passThrough(request: QuotaRequest, tx?: DbExecutor): Promise<QuotaOutcome> {
    const outcome = await this.inner.consume(request, tx);
    const pool = this.pool(request.keyId, request.counter);
    if (pool === undefined || pool.day !== utcDay(request.now)) return outcome;
    pool.known = outcome.used;
    return { ...outcome, used: outcome.used - pool.left };
  }

  /** Returns a pool's unused units to the shared counter (on its own day); resolves once returned. */
  private giveBack(pool: Pool): Promise<void> | null {
    const units = pool.left;
    if (units <= 0) return null;
    pool.left = 0;
    pool.trips++;
    if (pool.known !== null) pool.known -= units;
    return this.returnUnits(pool.keyId, pool.counter, units, pool.day);
  }

  /** Gives `units` back to the shared counter of `day`; resolves once returned (tracked for flush). */
  private returnUnits(keyId: string, counter: Counter, units: number, day: number): Promise<void> | null {
    if (units <= 0) return null;
    const done: Promise<void> = this.inner
      .refund(keyId, counter, units, day * DAY_MS)
      // A failed return (store down) leaves the units counted as used: never more than the quota.
      .catch(() => {})
      .finally(() => this.returning.delete(done));
    this.returning.add(done);
    return done;
  }

  private returnIdle(): void {
    const now = this.wall();
    for (const pool of this.allPools()) {
      if (pool.busy !== null || now - pool.lastUsed < this.idleReturnMs) continue;
      const returned = this.giveBack(pool);
      // A charge arriving meanwhile waits, so it never reads the shared count without the returned units.
      if (returned !== null) {
        occupy(
          pool,
          returned.then(() => {
            pool.busy = null;
          }),
        );
      }
      // Forget pools idle for a minute so memory follows the active keys only.
      if (now - pool.lastUsed >= 60_000) this.deletePool(pool);
    }
  }

  async refund(keyId: string, counter: Counter, units: number, now: number): Promise<void> {
    await this.inner.refund(keyId, counter, units, now);
    const pool = this.pool(keyId, counter);
    if (pool?.known != null && pool.day === utcDay(now)) pool.known = Math.max(0, pool.known - units);
  }

  /**
   * The shared count minus this process's unused units. A reservation in flight makes that ambiguous (the
   * store may have counted a block that `left` does not hold yet, or a return may not have landed), so
   * the read waits until the key's pools have no round trip in flight, and is taken again (a few times at
   * most) when one started while it ran.
   */
  async usage(keyId: string, now: number): Promise<Record<Counter, number>> {
    const day = utcDay(now);
    const pools = () => [...(this.pools.get(keyId)?.values() ?? [])].filter((pool) => pool.day === day);
    for (let attempt = 0; ; attempt++) {
      const before = pools();
      for (const pool of before) while (pool.busy !== null) await pool.busy;
      await Promise.all(this.returning);
      const trips = before.map((pool) => pool.trips);
      const usage = await this.inner.usage(keyId, now);
      const after = pools();
      const quiet =
        after.length === before.length &&
        after.every((pool, i) => pool === before[i] && pool.busy === null && pool.trips === trips[i]);
      if (quiet || attempt >= 3) {
        for (const pool of after) usage[pool.counter] = Math.max(0, usage[pool.counter] - pool.left);
        return usage;
      }
    }
  }

  /** Resolves once no reservation, top-up or return is in flight for any pool (tests, flush). */
  async settled(): Promise<void> {
    for (const pool of this.allPools()) {
      // A top-up may land (or start another) while waiting: wait until the pool is idle.
      while (pool.busy !== null) await pool.busy;
    }
  }

  /** Returns every unused unit now (tests, shutdown). */
  async flush(): Promise<void> {
    await this.settled();
    for (const pool of this.allPools()) {
      while (pool.busy !== null) await pool.busy;
      this.giveBack(pool);
    }
    await Promise.all(this.returning);
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
    await this.inner.close();
  }
}
