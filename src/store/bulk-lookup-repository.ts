// Many-IP reputation lookups for bulk-check (SPEC §3.5): one indexed IN query per chunk.
import type { DbExecutor } from './database.js';

export interface BulkLookupRow {
  readonly ip: string;
  readonly score: number;
  readonly score_raw: number;
  readonly country_code: string | null;
  readonly last_seen: number;
}

const CHUNK = 5000;

/** Reputation summaries for the given canonical IPs; IPs without a row are absent from the map. */
export async function lookupMany(
  db: DbExecutor,
  ips: readonly string[],
): Promise<Map<string, BulkLookupRow>> {
  const out = new Map<string, BulkLookupRow>();
  for (let i = 0; i < ips.length; i += CHUNK) {
    const rows = await db
      .selectFrom('reputations')
      .select(['ip', 'score', 'score_raw', 'country_code', 'last_seen'])
      .where('ip', 'in', ips.slice(i, i + CHUNK))
      .execute();
    for (const row of rows) out.set(row.ip, row);
  }
  return out;
}
