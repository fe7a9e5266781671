// Bulk reports accepted and not yet applied (decision 0853): SQLite's raw connection, one append-only table.
import type BetterSqlite3 from 'better-sqlite3';
import type { DbExecutor } from './database.js';
import type { BulkReportFields } from './report-batch-sqlite.js';
import { sqliteStatement } from './sqlite-rows.js';

/** One accepted row as stored: the report, its reporter, the reporter's trust and the receive time. */
export interface PendingReportRow {
  readonly id: number;
  readonly keyId: string;
  readonly trust: number;
  readonly receivedAt: number;
  readonly ip: string;
  /** Primary category first. */
  readonly categories: readonly string[];
  readonly protocol: string | null;
  readonly comment: string | null;
  readonly reportedAt: number;
}

/**
 * Appends `reports` (in request order) inside the caller's transaction: one positional statement per row
 * into a table with no index but its integer key, so the cost is a B-tree append per row.
 */
export function insertPendingReportsSqlite(
  sqlite: BetterSqlite3.Database,
  keyId: string,
  trust: number,
  receivedAt: number,
  reports: readonly BulkReportFields[],
): void {
  const statement = sqliteStatement(
    sqlite,
    `insert into pending_reports (key_id, trust, received_at, ip, categories, protocol, comment, reported_at)
      values (?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  for (const report of reports) {
    statement.run(
      keyId,
      trust,
      receivedAt,
      report.ip.text,
      report.categories.join(','),
      report.protocol,
      report.comment,
      report.reportedAt,
    );
  }
}

/** The primary category of a stored `categories` list. */
function primaryOf(categories: string): string {
  const comma = categories.indexOf(',');
  return comma < 0 ? categories : categories.slice(0, comma);
}

/**
 * `ip \0 primary category` of every pending row of `keyId` received at or after `since`: the pending half
 * of the 15-minute merge (SPEC §3.3). The table holds only rows not yet applied, so it is read whole.
 */
export function pendingMergeKeysSqlite(
  sqlite: BetterSqlite3.Database,
  keyId: string,
  since: number,
  into: Set<string>,
): void {
  const rows = sqliteStatement(
    sqlite,
    'select ip, categories from pending_reports where key_id = ? and received_at >= ?',
  )
    .raw()
    .iterate(keyId, since) as IterableIterator<[string, string]>;
  for (const [ip, categories] of rows) into.add(`${ip}\u0000${primaryOf(categories)}`);
}

/** Whether `keyId` has a pending row for `ip` with primary category `category` received at or after `since`. */
export function hasPendingReportSqlite(
  sqlite: BetterSqlite3.Database,
  keyId: string,
  ip: string,
  category: string,
  since: number,
): boolean {
  const rows = sqliteStatement(
    sqlite,
    'select categories from pending_reports where key_id = ? and ip = ? and received_at >= ?',
  )
    .pluck()
    .all(keyId, ip, since) as string[];
  return rows.some((categories) => primaryOf(categories) === category);
}

/** The distinct IPs of every pending row. */
export function pendingIpsSqlite(sqlite: BetterSqlite3.Database): string[] {
  return sqliteStatement(sqlite, 'select distinct ip from pending_reports').pluck().all() as string[];
}

/** Up to `limit` pending rows, oldest (lowest id) first. */
export function readPendingReportsSqlite(sqlite: BetterSqlite3.Database, limit: number): PendingReportRow[] {
  const rows = sqliteStatement(
    sqlite,
    `select id, key_id, trust, received_at, ip, categories, protocol, comment, reported_at
      from pending_reports order by id limit ?`,
  )
    .raw()
    .all(limit) as [number, string, number, number, string, string, string | null, string | null, number][];
  return rows.map(([id, keyId, trust, receivedAt, ip, categories, protocol, comment, reportedAt]) => ({
    id: Number(id),
    keyId,
    trust: Number(trust),
    receivedAt: Number(receivedAt),
    ip,
    categories: categories.split(','),
    protocol,
    comment,
    reportedAt: Number(reportedAt),
  }));
}

/** Deletes the pending rows up to and including `lastId` (the caller applied them in the same transaction). */
export function deletePendingReportsSqlite(sqlite: BetterSqlite3.Database, lastId: number): void {
  sqliteStatement(sqlite, 'delete from pending_reports where id <= ?').run(lastId);
}

/** How many rows are pending (operations, tests). */
export async function countPendingReports(db: DbExecutor): Promise<number> {
  const row = await db
    .selectFrom('pending_reports')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirst();
  return Number(row?.n ?? 0);
}
