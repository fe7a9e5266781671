// Seeds listed IPs for TAXII tests and benchmarks: reputation rows inserted in bulk, versions published through the real publisher.
import { parseIp } from '../../src/core/ip.js';
import type { Services } from '../../src/services/services.js';
import type { ReputationRow } from '../../src/store/reputation-repository.js';

/** The i-th seeded address: public IPv4 inside 45.0.0.0/8. */
export function seededIp(i: number): string {
  return `45.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
}

/**
 * Inserts `ips` as reputations with `score` and publishes their indicator versions, all in one
 * transaction at the services' clock time (so they share one second, as case 012 asks).
 */
export async function seedListedIps(
  services: Services,
  ips: readonly string[],
  options: { score?: number; categories?: readonly string[] } = {},
): Promise<void> {
  const now = services.clock.now();
  const score = options.score ?? 80;
  await services.store.transaction(async (tx) => {
    for (let start = 0; start < ips.length; start += 500) {
      const chunk = ips.slice(start, start + 500).map((text) => {
        const parsed = parseIp(text);
        if (!parsed.ok) throw new Error(`bad seed IP ${text}`);
        return parsed.ip;
      });
      await tx
        .insertInto('reputations')
        .values(
          chunk.map((ip) => ({
            ip: ip.text,
            ip_key: ip.key,
            ip_version: ip.version,
            first_seen: now - 3_600_000,
            last_seen: now,
            score,
            score_raw: score,
            score_updated_at: now,
            stix_id: crypto.randomUUID(),
          })),
        )
        .execute();
      if (options.categories && options.categories.length > 0) {
        await tx
          .insertInto('reputation_categories')
          .values(
            chunk.flatMap((ip) =>
              (options.categories ?? []).map((category) => ({ ip: ip.text, category, count: 1 })),
            ),
          )
          .execute();
      }
      const rows = await tx
        .selectFrom('reputations')
        .selectAll()
        .where(
          'ip',
          'in',
          chunk.map((ip) => ip.text),
        )
        .execute();
      const byIp = new Map(rows.map((r) => [r.ip, r]));
      for (const ip of chunk) {
        const row = byIp.get(ip.text);
        if (row) await services.taxii.publish(tx, row, now);
      }
    }
  });
}

/** Sets an IP's score and runs the publisher, as a rescore would. */
export async function changeScore(services: Services, ip: string, score: number): Promise<void> {
  const now = services.clock.now();
  await services.store.transaction(async (tx) => {
    await tx
      .updateTable('reputations')
      .set({ score, score_raw: score, score_updated_at: now })
      .where('ip', '=', ip)
      .execute();
    const row = (await tx
      .selectFrom('reputations')
      .selectAll()
      .where('ip', '=', ip)
      .executeTakeFirstOrThrow()) as ReputationRow;
    await services.taxii.publish(tx, row, now);
  });
}
