// Raw report rows (telemetry, SPEC §6): the 15-minute merge look-up, inserts and the newest-first list.
import type { DbExecutor } from './database.js';
import { prepared } from './prepared.js';

export interface NewReport {
  ip: string;
  ipKey: Buffer;
  keyId: string;
  category: string;
  categories: readonly string[];
  protocol: string | null;
  comment: string | null;
  reportedAt: number;
  receivedAt: number;
  day: number;
}

/** True when this key reported this IP and category at or after `since` (server receive time). */
export async function hasRecentReport(
  db: DbExecutor,
  keyId: string,
  ip: string,
  category: string,
  since: number,
): Promise<boolean> {
  const row = await db
    .selectFrom('reports')
    .select('id')
    .where('key_id', '=', keyId)
    .where('ip', '=', ip)
    .where('category', '=', category)
    .where('received_at', '>=', since)
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

/** The `reports` row for a new report (shared by the single and the batch insert). */
export function reportRow(report: NewReport) {
  return {
    ip: report.ip,
    ip_key: report.ipKey,
    key_id: report.keyId,
    category: report.category,
    categories: report.categories.join(','),
    protocol: report.protocol,
    comment: report.comment,
    reported_at: report.reportedAt,
    received_at: report.receivedAt,
    day: report.day,
  };
}

export async function insertReport(db: DbExecutor, report: NewReport): Promise<void> {
  await db.insertInto('reports').values(reportRow(report)).execute();
}

export interface ReportListItem {
  category: string;
  protocol: string | null;
  comment: string | null;
  reportedAt: number;
}

const selectNewestReports = prepared(3, (db, ip: string, since: number, limit: number) =>
  db
    .selectFrom('reports')
    .select(['category', 'protocol', 'comment', 'reported_at'])
    .where('ip', '=', ip)
    .where('reported_at', '>=', since)
    .orderBy('reported_at', 'desc')
    .orderBy('id', 'desc')
    .limit(limit),
);

/** The newest `limit` reports of an IP reported at or after `since`. */
export async function newestReports(
  db: DbExecutor,
  ip: string,
  since: number,
  limit: number,
): Promise<ReportListItem[]> {
  const rows = await selectNewestReports(db, ip, since, limit);
  return rows.map((r) => ({
    category: r.category,
    protocol: r.protocol,
    comment: r.comment,
    reportedAt: Number(r.reported_at),
  }));
}

/**
 * Category counts of an IP's reports reported at or after `since` (check with `maxAge`), from the raw rows,
 * which cover the retention window: ordered like the all-time counts (count desc, then category).
 */
export async function categoryCountsSince(
  db: DbExecutor,
  ip: string,
  since: number,
): Promise<{ category: string; count: number }[]> {
  const rows = await db
    .selectFrom('reports')
    .select('categories')
    .where('ip', '=', ip)
    .where('reported_at', '>=', since)
    .execute();
  const counts = new Map<string, number>();
  for (const row of rows) {
    for (const category of row.categories.split(',')) {
      if (category !== '') counts.set(category, (counts.get(category) ?? 0) + 1);
    }
  }
  return [...counts]
    .map(([category, count]) => ({ category, count }))
    .sort((a, b) => b.count - a.count || (a.category < b.category ? -1 : a.category > b.category ? 1 : 0));
}
