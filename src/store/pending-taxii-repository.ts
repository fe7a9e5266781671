// The TAXII outbox (decision 0852): IPs whose indicator versions a bulk report left to the publisher.
import type BetterSqlite3 from 'better-sqlite3';
import { sql } from 'kysely';
import type { DbExecutor } from './database.js';
import { chunks } from './report-batch-repository.js';
import { sqliteStatement } from './sqlite-rows.js';

/** A pending IP and the latest report time that marked it (epoch ms). */
export interface PendingTaxiiMark {
  readonly ip: string;
  readonly now: number;
}

const KEEP_LATER_NOW =
  'case when excluded.now > pending_taxii.now then excluded.now else pending_taxii.now end';

/**
 * Marks IPs pending inside the caller's transaction, so the marks commit (or roll back) with the scores
 * that made them. An IP already pending keeps one mark with the later `now`. `sqlite`: the raw connection
 * `tx` is on, to write through one prepared statement per mark.
 */
export async function markPendingTaxii(
  tx: DbExecutor,
  marks: readonly PendingTaxiiMark[],
  sqlite: BetterSqlite3.Database | null = null,
): Promise<void> {
  if (marks.length === 0) return;
  if (sqlite) {
    const statement = sqliteStatement(
      sqlite,
      `insert into pending_taxii (ip, now) values (?, ?) on conflict (ip) do update set now = ${KEEP_LATER_NOW}`,
    );
    for (const mark of marks) statement.run(mark.ip, mark.now);
    return;
  }
  for (const part of chunks(marks)) {
    await tx
      .insertInto('pending_taxii')
      .values(part.map((mark) => ({ ip: mark.ip, now: mark.now })))
      .onConflict((oc) => oc.column('ip').doUpdateSet({ now: sql<number>`${sql.raw(KEEP_LATER_NOW)}` }))
      .execute();
  }
}

/** The `limit` oldest marks, by report time, then IP. */
export async function readPendingTaxii(db: DbExecutor, limit: number): Promise<PendingTaxiiMark[]> {
  const rows = await db
    .selectFrom('pending_taxii')
    .select(['ip', 'now'])
    .orderBy('now')
    .orderBy('ip')
    .limit(limit)
    .execute();
  return rows.map((row) => ({ ip: row.ip, now: Number(row.now) }));
}

/** The current marks of `ips` (those still pending), in IP order. */
export async function readPendingTaxiiFor(
  db: DbExecutor,
  ips: readonly string[],
): Promise<PendingTaxiiMark[]> {
  const marks: PendingTaxiiMark[] = [];
  for (const part of chunks(ips)) {
    const rows = await db.selectFrom('pending_taxii').select(['ip', 'now']).where('ip', 'in', part).execute();
    for (const row of rows) marks.push({ ip: row.ip, now: Number(row.now) });
  }
  return marks.sort((a, b) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0));
}

/** How many IPs are pending (operations, tests). */
export async function countPendingTaxii(db: DbExecutor): Promise<number> {
  const row = await db
    .selectFrom('pending_taxii')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirst();
  return Number(row?.n ?? 0);
}

/** Clears the marks of `ips` (the caller published them in the same transaction). */
export async function clearPendingTaxii(tx: DbExecutor, ips: readonly string[]): Promise<void> {
  for (const part of chunks(ips)) await tx.deleteFrom('pending_taxii').where('ip', 'in', part).execute();
}
