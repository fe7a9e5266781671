// Statements for the retention job (SPEC §6): batched deletes of old raw rows and of inactive reputations.
import { sql } from 'kysely';
import type { Db, DbExecutor, Dialect } from './database.js';
import { lockIp } from './reputation-repository.js';

/**
 * Tables holding per-IP aggregates next to `reputations`, keyed by an `ip` column. Purging an IP
 * deletes its rows here in the same transaction. A feature adding such a table (sensor protocol
 * counts, behaviour counts, feed listings) adds it to this list; anything that is not a plain delete
 * by ip (TAXII revocation) registers a purge hook on the RetentionService instead.
 */
export const REPUTATION_CHILD_TABLES = [
  'reputation_reporters',
  'reputation_categories',
  'reputation_days',
  // Sensor evidence (migration 0004-evidence, decisions 0600-0601).
  'reputation_protocols',
  'reputation_behaviors',
  'reputation_primitives',
  'sensor_sessions',
  'evidence_ids',
  // Cross-session auth windows (migration 0008, decision 0605).
  'sensor_auth_windows',
] as const;

/**
 * Deletes at most `limit` rows of `table` whose `column` (a day number) is before `cutoffDay`; returns
 * how many went. PostgreSQL: only the `<table>_default` partition can hold such rows once the daily
 * partitions are dropped, and ctid addresses rows there; SQLite: rowid.
 */
export async function deleteRawBatch(
  db: Db,
  dialect: Dialect,
  table: string,
  column: string,
  cutoffDay: number,
  limit: number,
): Promise<number> {
  const target = dialect === 'postgres' ? `${table}_default` : table;
  const address = dialect === 'postgres' ? sql.raw('ctid') : sql.raw('rowid');
  const result = await sql`delete from ${sql.table(target)} where ${address} in (
      select ${address} from ${sql.table(target)} where ${sql.ref(column)} < ${cutoffDay} limit ${limit})`.execute(
    db,
  );
  return Number(result.numAffectedRows ?? 0);
}

/** Rows of `table` (default partition only on PostgreSQL) before `cutoffDay`, for dry runs and reports. */
export async function countRawBefore(
  db: Db,
  dialect: Dialect,
  table: string,
  column: string,
  cutoffDay: number,
): Promise<number> {
  const target = dialect === 'postgres' ? `${table}_default` : table;
  const result = await sql<{
    n: number;
  }>`select count(*) as n from ${sql.table(target)} where ${sql.ref(column)} < ${cutoffDay}`.execute(db);
  return Number(result.rows[0]?.n ?? 0);
}

/** Up to `limit` IPs last seen before `cutoff` (epoch ms), in ip order, after `afterIp`. */
export async function staleReputationIps(
  db: DbExecutor,
  cutoff: number,
  limit: number,
  afterIp = '',
): Promise<string[]> {
  const rows = await db
    .selectFrom('reputations')
    .select('ip')
    .where('last_seen', '<', cutoff)
    .where('ip', '>', afterIp)
    .orderBy('ip')
    .limit(limit)
    .execute();
  return rows.map((r) => r.ip);
}

export async function countStaleReputations(db: DbExecutor, cutoff: number): Promise<number> {
  const row = await db
    .selectFrom('reputations')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('last_seen', '<', cutoff)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/**
 * Inside `tx`: locks each candidate IP against concurrent writers (in ip order, so never a deadlock),
 * keeps only those still last seen before `cutoff` (new evidence may have arrived since the scan),
 * deletes their child rows and reputation rows, and returns the IPs deleted.
 */
export async function deleteStaleReputations(
  tx: DbExecutor,
  dialect: Dialect,
  ips: readonly string[],
  cutoff: number,
): Promise<string[]> {
  if (ips.length === 0) return [];
  for (const ip of [...ips].sort()) await lockIp(tx, dialect, ip);
  const stale = await tx
    .selectFrom('reputations')
    .select('ip')
    .where('ip', 'in', ips)
    .where('last_seen', '<', cutoff)
    .execute();
  const gone = stale.map((r) => r.ip);
  if (gone.length === 0) return [];
  for (const table of REPUTATION_CHILD_TABLES) {
    await tx.deleteFrom(table).where('ip', 'in', gone).execute();
  }
  await tx.deleteFrom('reputations').where('ip', 'in', gone).execute();
  return gone;
}

/** Global look-up aggregates (username and e-mail look-ups, SPEC §3.5): purged by inactivity like reputations. */
export const LOOKUP_TABLES = [
  { table: 'sensor_usernames', key: 'username' },
  { table: 'sensor_recipients', key: 'email' },
] as const;

export type LookupTable = (typeof LOOKUP_TABLES)[number];

/** Deletes up to `limit` rows of `target` last seen before `cutoff` (epoch ms); returns how many. */
export async function deleteStaleLookupBatch(
  db: DbExecutor,
  target: LookupTable,
  cutoff: number,
  limit: number,
): Promise<number> {
  const key = sql.ref(target.key);
  const result = await sql`delete from ${sql.table(target.table)} where (${key}, protocol) in (
      select ${key}, protocol from ${sql.table(target.table)} where last_seen < ${cutoff} limit ${limit})`.execute(
    db,
  );
  return Number(result.numAffectedRows ?? 0);
}

/** How many rows of `target` were last seen before `cutoff`. */
export async function countStaleLookups(
  db: DbExecutor,
  target: LookupTable,
  cutoff: number,
): Promise<number> {
  const result = await sql<{
    n: number | string;
  }>`select count(*) as n from ${sql.table(target.table)} where last_seen < ${cutoff}`.execute(db);
  return Number(result.rows[0]?.n ?? 0);
}
