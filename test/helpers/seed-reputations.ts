// Seeds reputations rows directly (blacklist tests and benchmarks): fast, and independent of scoring.
import { randomUUID } from 'node:crypto';
import { parseIp } from '../../src/core/ip.js';
import type { DbExecutor } from '../../src/store/database.js';

export interface SeedRow {
  ip: string;
  score: number;
  scoreRaw?: number;
  lastSeen?: number;
  sessions?: number;
  countryCode?: string | null;
  asn?: string | null;
  asnOrg?: string | null;
}

export async function seedReputations(db: DbExecutor, rows: readonly SeedRow[], now = Date.UTC(2026, 2, 15)) {
  for (let i = 0; i < rows.length; i += 500) {
    const values = rows.slice(i, i + 500).map((row) => {
      const parsed = parseIp(row.ip);
      if (!parsed.ok) throw new Error(`bad seed ip ${row.ip}`);
      return {
        ip: parsed.ip.text,
        ip_key: parsed.ip.key,
        ip_version: parsed.ip.version,
        first_seen: (row.lastSeen ?? now) - 86_400_000,
        last_seen: row.lastSeen ?? now,
        score: row.score,
        score_raw: row.scoreRaw ?? row.score,
        score_updated_at: now,
        sessions: row.sessions ?? 1,
        country_code: row.countryCode ?? null,
        asn: row.asn ?? null,
        asn_org: row.asnOrg ?? null,
        stix_id: `indicator--${randomUUID()}`,
      };
    });
    await db.insertInto('reputations').values(values).execute();
  }
}

/** n distinct public IPv4 addresses counting up from a.b.0.0. */
export function v4Range(a: number, b: number, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${a}.${(b + (i >> 16)) & 255}.${(i >> 8) & 255}.${i & 255}`);
}
