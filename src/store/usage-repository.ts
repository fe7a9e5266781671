// Daily usage counters in the database: atomic check-and-increment, exact across processes (SPEC §2.3).
import { sql } from 'kysely';
import type { DbExecutor, Dialect } from './database.js';
import { prepared } from './prepared.js';

export interface UsageKey {
  keyId: string;
  counter: string;
  day: number;
}

async function currentUsed(db: DbExecutor, key: UsageKey): Promise<number> {
  const row = await db
    .selectFrom('usage')
    .select('used')
    .where('key_id', '=', key.keyId)
    .where('counter', '=', key.counter)
    .where('day', '=', key.day)
    .executeTakeFirst();
  return row ? Number(row.used) : 0;
}

const addUnlimited = prepared(4, (db, keyId: string, counter: string, day: number, units: number) =>
  db
    .insertInto('usage')
    .values({ key_id: keyId, counter, day, used: units })
    .onConflict((oc) =>
      oc.columns(['key_id', 'counter', 'day']).doUpdateSet({ used: sql<number>`usage.used + excluded.used` }),
    )
    .returning('used'),
);

const addWithinLimit = prepared(
  5,
  (db, keyId: string, counter: string, day: number, units: number, limit: number) =>
    db
      .insertInto('usage')
      .values({ key_id: keyId, counter, day, used: units })
      .onConflict((oc) =>
        oc
          .columns(['key_id', 'counter', 'day'])
          .doUpdateSet({ used: sql<number>`usage.used + excluded.used` })
          .where(sql<number>`usage.used + excluded.used`, '<=', limit),
      )
      .returning('used'),
);

/**
 * Adds `units` when the result stays within `limit` (null: no limit), in one statement, so concurrent
 * callers in any process never overshoot. Returns whether it was granted and the count after.
 */
export async function consumeAll(
  db: DbExecutor,
  key: UsageKey,
  units: number,
  limit: number | null,
): Promise<{ granted: boolean; used: number }> {
  if (limit !== null && units > limit) return { granted: false, used: await currentUsed(db, key) };
  const [row] =
    limit === null
      ? await addUnlimited(db, key.keyId, key.counter, key.day, units)
      : await addWithinLimit(db, key.keyId, key.counter, key.day, units, limit);
  if (row) return { granted: true, used: Number(row.used) };
  return { granted: false, used: await currentUsed(db, key) };
}

/**
 * Adds as many of `units` as fit under `limit` and returns how many were granted. Must run inside a
 * transaction (`tx`): the row is locked (PostgreSQL) or the database is (SQLite, BEGIN IMMEDIATE).
 */
export async function consumeUpTo(
  tx: DbExecutor,
  dialect: Dialect,
  key: UsageKey,
  units: number,
  limit: number | null,
): Promise<{ granted: number; used: number }> {
  await tx
    .insertInto('usage')
    .values({ key_id: key.keyId, counter: key.counter, day: key.day, used: 0 })
    .onConflict((oc) => oc.columns(['key_id', 'counter', 'day']).doNothing())
    .execute();
  const row = await tx
    .selectFrom('usage')
    .select('used')
    .where('key_id', '=', key.keyId)
    .where('counter', '=', key.counter)
    .where('day', '=', key.day)
    .$if(dialect === 'postgres', (qb) => qb.forUpdate())
    .executeTakeFirstOrThrow();
  const used = Number(row.used);
  const granted = limit === null ? units : Math.max(0, Math.min(units, limit - used));
  if (granted > 0) {
    await tx
      .updateTable('usage')
      .set({ used: used + granted })
      .where('key_id', '=', key.keyId)
      .where('counter', '=', key.counter)
      .where('day', '=', key.day)
      .execute();
  }
  return { granted, used: used + granted };
}

/** Gives back units charged for work that did not happen; never goes below zero. */
export async function refund(db: DbExecutor, key: UsageKey, units: number): Promise<void> {
  await db
    .updateTable('usage')
    .set({ used: sql<number>`case when used > ${units} then used - ${units} else 0 end` })
    .where('key_id', '=', key.keyId)
    .where('counter', '=', key.counter)
    .where('day', '=', key.day)
    .execute();
}

/** Usage per counter for one key and day. */
export async function usageForDay(db: DbExecutor, keyId: string, day: number): Promise<Map<string, number>> {
  const rows = await db
    .selectFrom('usage')
    .select(['counter', 'used'])
    .where('key_id', '=', keyId)
    .where('day', '=', day)
    .execute();
  return new Map(rows.map((r) => [r.counter, Number(r.used)]));
}
