// The bulk-report fast paths store what the plain paths store: raw SQLite writes vs Kysely, publishMany vs publish.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { loadCatalog } from '../src/core/detection/catalog.js';
import { BulkReportService } from '../src/services/bulk-report-service.js';
import type { ReputationRow } from '../src/store/reputation-repository.js';
import { ENGINES, skipReason } from './helpers/engines.js';
import { seedReputations } from './helpers/seed-reputations.js';
import { createTestApp, type TestApp } from './helpers/test-app.js';

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;

/** Replaces every UUID by its order of first appearance, so two runs with fresh random ids compare. */
function normaliseUuids(value: unknown): unknown {
  const seen = new Map<string, string>();
  return JSON.parse(
    JSON.stringify(value).replace(UUID, (uuid) => {
      let id = seen.get(uuid);
      if (!id) {
        id = `uuid-${seen.size}`;
        seen.set(uuid, id);
      }
      return id;
    }),
  );
}

describe('bulk report: raw SQLite writes store what the Kysely writes store', {
  skip: skipReason('sqlite'),
}, () => {
  let t: TestApp;

  before(async () => {
    // Every scored IP enters the TAXII feed, so the published versions are compared too.
    t = await createTestApp('sqlite', { VAKT_TAXII_SCORE_MINIMUM: '1' });
  });
  after(async () => t?.close());

  const rows = (block: number, round: number) => {
    const out: { row: number; fields: Record<string, unknown> }[] = [];
    const base = Date.UTC(2026, 2, 15, 11);
    for (let i = 0; i < 40; i++) {
      for (let r = 0; r < 1 + ((i + round) % 3); r++) {
        out.push({
          row: out.length + 1,
          fields: {
            ip: `45.${block}.${i >> 4}.${i}`,
            categories: r === 0 ? 'brute_force,spam' : ['port_scan', 'ddos'][(i + r) % 2],
            protocol: i % 2 === 0 ? 'ssh' : undefined,
            comment: i % 5 === 0 ? `comment "${i}", with; punctuation` : undefined,
            timestamp: new Date(base - ((i * 7 + r * 31) % 72) * 3_600_000).toISOString(),
          },
        });
      }
    }
    out.push({ row: out.length + 1, fields: { ...out[0]?.fields } }); // a merged repeat
    out.push({ row: out.length + 1, fields: { ip: '10.0.0.1', category: 'spam' } }); // a per-row error
    return out;
  };

  const snapshot = async (block: number) => {
    const prefix = `45.${block}.`;
    const like = `${prefix}%`;
    const db = t.store.db;
    const strip = (row: Record<string, unknown>) => {
      const { ip, ip_key: _k, stix_id: _s, id: _i, seq: _q, object: _o, date_added_us: _d, ...rest } = row;
      return { ...rest, at: String(ip).slice(prefix.length) };
    };
    const read = async (table: string, order: string) =>
      (
        await sql<
          Record<string, unknown>
        >`select * from ${sql.table(table)} where ip like ${like} order by ${sql.raw(order)}`.execute(db)
      ).rows.map(strip);
    return {
      reputations: await read('reputations', 'ip'),
      reporters: await read('reputation_reporters', 'ip, reporter_id'),
      categories: await read('reputation_categories', 'ip, category'),
      days: await read('reputation_days', 'ip, day'),
      protocols: await read('reputation_protocols', 'ip, protocol'),
      reports: await read('reports', 'ip, id'),
      versions: await read('taxii_versions', 'ip, date_added_us'),
    };
  };

  it('gives identical rows in every table, TAXII versions included, over two rounds', async () => {
    const kysely = new BulkReportService(
      t.store,
      t.services.quota,
      t.services.scorer,
      t.services.reports,
      t.config.allowlist,
      false,
    );
    const keySecret = await t.key('unlimited');
    const auth = await t.services.keys.authenticate(keySecret);
    assert.ok(auth.ok);
    for (let round = 0; round < 2; round++) {
      // Each bulk report's TAXII versions are published by the outbox (decision 0852): drained after each.
      const a = await t.services.bulkReports.report(auth.key, rows(1, round), t.clock.now());
      await t.services.taxiiOutbox.drain();
      const b = await kysely.report(auth.key, rows(2, round), t.clock.now());
      await t.services.taxiiOutbox.drain();
      // Same key, so the quota counter differs (it counts both); everything else must agree.
      assert.deepEqual({ ...a, quota: null }, { ...b, quota: null });
      assert.equal(b.quota.used - a.quota.used, b.quota.granted);
      assert.equal(a.rejected, 1);
      t.clock.advance(16 * 60_000);
    }
    const raw = await snapshot(1);
    const plain = await snapshot(2);
    assert.ok(raw.reputations.length === 40 && raw.versions.length >= 40);
    for (const table of Object.keys(raw) as (keyof typeof raw)[]) {
      assert.deepEqual(raw[table], plain[table], table);
    }
  });
});

for (const engine of ENGINES) {
  describe(`TAXII publishMany publishes what publish does row by row (${engine})`, {
    skip: skipReason(engine),
  }, () => {
    const apps: TestApp[] = [];
    after(async () => {
      for (const app of apps) await app.close();
    });

    // One database through the given publisher; returns its feed and reputation STIX ids, UUIDs normalised.
    async function run(batch: boolean) {
      const t = await createTestApp(engine, { VAKT_TAXII_SCORE_MINIMUM: '50' });
      apps.push(t);
      const now = t.clock.now();
      await t.services.taxii.initialise(now);
      const ips = ['51.0.0.1', '51.0.0.2', '51.0.0.3', '51.0.0.4', '51.0.0.5', '51.0.0.6'];
      await seedReputations(
        t.store.db,
        ips.map((ip) => ({ ip, score: 0 })),
        now,
      );
      // Fixed STIX ids: the two databases start identical.
      for (const [i, ip] of ips.entries()) {
        await t.store.db
          .updateTable('reputations')
          .set({ stix_id: `00000000-0000-4000-8000-00000000000${i}` })
          .where('ip', '=', ip)
          .execute();
      }
      const behavior = loadCatalog().behaviors[0]?.name ?? 'none';
      await sql`insert into reputation_categories (ip, category, count) values
        ('51.0.0.1', 'brute_force', 3), ('51.0.0.1', 'spam', 3), ('51.0.0.5', 'port_scan', 1)`.execute(
        t.store.db,
      );
      await sql`insert into reputation_behaviors (ip, behavior, count) values ('51.0.0.5', ${behavior}, 2)`.execute(
        t.store.db,
      );
      const publish = async (scores: Record<string, number>, at: number, many: boolean) => {
        await t.store.transaction(async (tx) => {
          const rows: ReputationRow[] = [];
          for (const [ip, score] of Object.entries(scores)) {
            await tx.updateTable('reputations').set({ score }).where('ip', '=', ip).execute();
            rows.push(
              await tx.selectFrom('reputations').selectAll().where('ip', '=', ip).executeTakeFirstOrThrow(),
            );
          }
          if (many) await t.services.taxii.publishMany(tx, rows, at);
          else for (const row of rows) await t.services.taxii.publish(tx, row, at);
        });
      };
      // History, the same on both: listed, listed, listed then revoked, listed (its row id changes below), -, listed.
      await publish(
        { '51.0.0.1': 80, '51.0.0.2': 70, '51.0.0.3': 60, '51.0.0.4': 90, '51.0.0.6': 75 },
        now,
        false,
      );
      await publish({ '51.0.0.3': 10 }, now + 1000, false);
      await t.store.db
        .updateTable('reputations')
        .set({ stix_id: '00000000-0000-4000-8000-0000000000ff' })
        .where('ip', '=', '51.0.0.4')
        .execute();
      // The step under test: a new confidence, an unchanged one, a re-listing after revocation (new id),
      // a row whose id changed, a first listing, a delisting.
      await publish(
        { '51.0.0.1': 85, '51.0.0.2': 70, '51.0.0.3': 65, '51.0.0.4': 90, '51.0.0.5': 55, '51.0.0.6': 20 },
        now + 2000,
        batch,
      );
      const versions = await t.store.db.selectFrom('taxii_versions').selectAll().orderBy('seq').execute();
      const ids = await t.store.db
        .selectFrom('reputations')
        .select(['ip', 'stix_id'])
        .orderBy('ip')
        .execute();
      const clock = await t.store.db.selectFrom('taxii_clock').select('last_us').executeTakeFirstOrThrow();
      return {
        versions: normaliseUuids(
          versions.map(({ seq: _s, ...rest }) => ({ ...rest, object: JSON.parse(rest.object) })),
        ),
        ids: normaliseUuids(ids),
        clock: Number(clock.last_us),
        count: versions.length,
      };
    }

    it('writes the same versions in the same order with the same date_added values', async () => {
      const one = await run(false);
      const many = await run(true);
      assert.ok(one.count >= 12, `${one.count} versions`);
      assert.deepEqual(many.versions, one.versions);
      assert.deepEqual(many.ids, one.ids);
      assert.equal(many.clock, one.clock);
    });
  });
}
