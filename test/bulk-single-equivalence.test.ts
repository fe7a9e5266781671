// Bulk report and single reports of the same data leave identical reputations and aggregates (every engine).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ENGINES, skipReason } from './helpers/engines.js';
import { bearer, createTestApp, type TestApp } from './helpers/test-app.js';

interface Row {
  ip: string;
  categories: string;
  timestamp: string;
  comment: string;
  protocol?: string;
}

/** The same report sequence for two disjoint address blocks (`block` 1 or 2). */
function rows(block: number, round: number): Row[] {
  const out: Row[] = [];
  const base = Date.UTC(2026, 2, 15, 12, 0, 0);
  for (let i = 0; i < 24; i++) {
    const reports = 1 + ((i + round) % 4);
    for (let r = 0; r < reports; r++) {
      const primary = ['brute_force', 'port_scan', 'ddos', 'web_exploit'][(i + r) % 4] ?? 'brute_force';
      const extra = r % 2 === 0 ? ',spam' : ',spam,spam';
      out.push({
        ip: `45.${block}.0.${i}`,
        categories: `${primary}${extra}`,
        // Days apart and out of order, so day counts and max(last_reported_at) are exercised.
        timestamp: new Date(base - ((i * 7 + r * 31 + round * 13) % 96) * 3_600_000).toISOString(),
        comment: `row ${r}`,
        // Reports naming a protocol count as that protocol's events (decision 0601), in both paths.
        ...(i % 3 === 2 ? {} : { protocol: i % 3 === 0 ? 'ssh' : 'http' }),
      });
    }
  }
  // A repeat of (key, IP, primary category) inside the same batch: merged in both paths.
  const first = out[0];
  if (first) out.push({ ...first, comment: 'repeat' });
  return out;
}

const WITHOUT_IP = (row: Record<string, unknown>) => {
  const { ip: _ip, ip_key: _key, stix_id: _stix, ...rest } = row;
  // Single reports add each weight delta in turn, bulk adds their sum: equal up to float rounding.
  if (typeof rest.contributor_weight === 'number')
    rest.contributor_weight = Number(rest.contributor_weight.toFixed(9));
  return rest;
};

for (const engine of ENGINES) {
  describe(`bulk and single reports agree (${engine})`, { skip: skipReason(engine) }, () => {
    let t: TestApp;
    let keys: string[];

    before(async () => {
      t = await createTestApp(engine);
      // An established key (full trust) and a new free key (trust ramp).
      keys = [await t.key('unlimited'), await t.key('free')];
    });
    after(async () => t?.close());

    const single = async (row: Row, key: string) => {
      const res = await t.app.inject({
        method: 'POST',
        url: '/v1/key/report',
        headers: bearer(key),
        payload: { ...row },
      });
      assert.equal(res.statusCode, 200, res.body);
    };
    const bulk = async (list: Row[], key: string) => {
      const res = await t.app.inject({
        method: 'POST',
        url: '/v1/key/bulk-report',
        headers: bearer(key),
        payload: { reports: list },
      });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json().rejected, 0, res.body);
      // Applied after the answer on SQLite (decision 0853); the tables compared are the applied ones.
      await t.services.bulkQueue.drain();
    };

    const snapshot = async (block: number) => {
      const prefix = `45.${block}.`;
      const strip = (ip: string) => ip.slice(prefix.length);
      const reputations = await t.store.db
        .selectFrom('reputations')
        .selectAll()
        .where('ip', 'like', `${prefix}%`)
        .orderBy('ip')
        .execute();
      const reporters = await t.store.db
        .selectFrom('reputation_reporters')
        .selectAll()
        .where('ip', 'like', `${prefix}%`)
        .orderBy('ip')
        .orderBy('reporter_id')
        .execute();
      const categories = await t.store.db
        .selectFrom('reputation_categories')
        .selectAll()
        .where('ip', 'like', `${prefix}%`)
        .orderBy('ip')
        .orderBy('category')
        .execute();
      const days = await t.store.db
        .selectFrom('reputation_days')
        .selectAll()
        .where('ip', 'like', `${prefix}%`)
        .orderBy('ip')
        .orderBy('day')
        .execute();
      const protocols = await t.store.db
        .selectFrom('reputation_protocols')
        .selectAll()
        .where('ip', 'like', `${prefix}%`)
        .orderBy('ip')
        .orderBy('protocol')
        .execute();
      const reports = await t.store.db
        .selectFrom('reports')
        .select([
          'ip',
          'key_id',
          'category',
          'categories',
          'protocol',
          'comment',
          'reported_at',
          'received_at',
          'day',
        ])
        .where('ip', 'like', `${prefix}%`)
        .orderBy('ip')
        .orderBy('id')
        .execute();
      const norm = <T extends { ip: string }>(list: T[]) =>
        list.map((r) => ({ ...WITHOUT_IP(r as Record<string, unknown>), at: strip(r.ip) }));
      return {
        reputations: norm(reputations),
        reporters: norm(reporters),
        categories: norm(categories),
        days: norm(days),
        protocols: norm(protocols),
        reports: norm(reports),
      };
    };

    it('gives the same reputations, reporter weights, category, day, protocol and report rows', async () => {
      for (let round = 0; round < 2; round++) {
        for (const [k, key] of keys.entries()) {
          const one = rows(1, round + k);
          for (const row of one) await single(row, key);
          await bulk(rows(2, round + k), key);
        }
        // Past the merge window, so the next round's repeats are stored (existing reporter rows grow).
        t.clock.advance(16 * 60_000);
      }
      const a = await snapshot(1);
      const b = await snapshot(2);
      assert.ok(a.reputations.length > 0);
      assert.deepEqual(b.reputations, a.reputations);
      assert.deepEqual(b.reporters, a.reporters);
      assert.deepEqual(b.categories, a.categories);
      assert.deepEqual(b.days, a.days);
      assert.deepEqual(b.protocols, a.protocols);
      assert.ok(a.protocols.length > 0, 'reports named protocols');
      assert.deepEqual(b.reports, a.reports);
      const positive = a.reputations.filter((r) => Number((r as Record<string, unknown>).score) > 0);
      assert.ok(positive.length > 0, 'some scores moved');
    });
  });
}
