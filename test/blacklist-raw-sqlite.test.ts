// The SQLite raw-statement blacklist path (sqliteAddressPages + AddressLines) against the Kysely path: same rows, same bytes.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { BLACKLIST_FORMATS, formatBlacklist } from '../src/core/blacklist-format.js';
import { parseIp } from '../src/core/ip.js';
import { type BlacklistParams, BlacklistService } from '../src/services/blacklist-service.js';
import {
  type AddressPage,
  type BlacklistFilter,
  blacklistPages,
  detectBlacklistSchema,
  sqliteAddressPages,
} from '../src/store/blacklist-repository.js';
import { skipReason } from './helpers/engines.js';
import { type SeedRow, seedReputations } from './helpers/seed-reputations.js';
import { createTestApp, type TestApp } from './helpers/test-app.js';

const now = Date.UTC(2026, 2, 15, 12);

// Few distinct scores and sighting times, so the ip tie-break decides many page boundaries; a full /24 and
// a full IPv6 /120 to aggregate; enrichment and a raw score above the whitelisted one on some rows.
function rows(): SeedRow[] {
  const out: SeedRow[] = [];
  const scores = [100, 95, 80, 60, 50, 49, 10];
  for (let i = 0; i < 400; i++) {
    out.push({
      ip: `51.0.${i >> 6}.${(i * 37) % 256}`,
      score: scores[i % scores.length] ?? 50,
      scoreRaw: i % 11 === 0 ? 99 : undefined,
      lastSeen: now - (i % 3) * 1000,
      countryCode: i % 3 === 0 ? 'CN' : i % 3 === 1 ? 'RU' : null,
      asn: i % 2 === 0 ? '4134' : null,
    });
  }
  for (let i = 0; i < 256; i++) out.push({ ip: `51.1.0.${i}`, score: 80, lastSeen: now - (i % 2) * 1000 });
  for (let i = 0; i < 256; i++) {
    out.push({ ip: `2a05:d014:ff:212::${i.toString(16)}`, score: i % 2 === 0 ? 95 : 70, lastSeen: now });
  }
  out.push({ ip: '2a05:d014:ff:213::1', score: 60, lastSeen: now - 5000, countryCode: 'DE' });
  // Canonical text (as stored), each address once (the generator above repeats a few).
  const seen = new Set<string>();
  return out
    .map((row) => {
      const parsed = parseIp(row.ip);
      if (!parsed.ok) throw new Error(row.ip);
      return { ...row, ip: parsed.ip.text };
    })
    .filter((row) => !seen.has(row.ip) && seen.add(row.ip));
}

const base: Omit<BlacklistParams, 'format' | 'aggregate'> = {
  requestedLimit: null,
  scoreMinimum: 50,
  ignoreWhitelist: false,
  ipVersion: null,
  onlyCountries: null,
  exceptCountries: null,
  onlyAsn: null,
  exceptAsn: null,
  protocols: null,
  minSeverity: null,
};

const variants: Partial<BlacklistParams>[] = [
  {},
  { ipVersion: 4 },
  { ipVersion: 6 },
  { onlyCountries: ['CN'] },
  { exceptCountries: ['RU'], exceptAsn: ['4134'] },
  { ignoreWhitelist: true, scoreMinimum: 90 },
  { protocols: ['ssh'] },
  { minSeverity: 2 },
];

describe('blacklist raw SQLite path', { skip: skipReason('sqlite') }, () => {
  let t: TestApp;
  let seeded: SeedRow[];

  before(async () => {
    t = await createTestApp('sqlite', { VAKT_ALLOWLIST: '51.0.0.0/28,2a05:d014:ff:212::10' });
    seeded = rows();
    await seedReputations(t.store.db, seeded, now);
    await sql`insert into reputation_protocols (ip, protocol, sessions, events)
      select ip, 'ssh', 1, 1 from reputations where ip like '51.0.1.%' or ip like '2a05:%:1%'`.execute(
      t.store.db,
    );
    await sql`update reputations set max_severity = 3 where ip like '51.0.2.%'`.execute(t.store.db);
  });
  after(async () => t?.close());

  it('reads the snapshot through its own raw connection', async () => {
    const snapshot = await t.store.readSnapshot();
    try {
      assert.ok(snapshot.sqlite, 'a file database gives the snapshot a raw connection');
      assert.equal(snapshot.sqlite.readonly, true);
      assert.equal(snapshot.sqlite.inTransaction, true);
    } finally {
      await snapshot.release();
    }
  });

  it('pages exactly the addresses blacklistPages lists, at any page size and cut', async () => {
    const schema = await detectBlacklistSchema(t.store.db);
    const snapshot = await t.store.readSnapshot();
    try {
      assert.ok(snapshot.sqlite);
      for (const variant of variants) {
        const filter: BlacklistFilter = { ...base, ...variant, excludedKeyRanges: [] };
        const expected: string[] = [];
        for await (const page of blacklistPages(snapshot.db, filter, schema, 100_000, 5000, true)) {
          expected.push(...page.map((r) => r.ip));
        }
        for (const pageSize of [1, 7, 250, 5000]) {
          for (const limit of [100_000, expected.length, 123, 1]) {
            const pages: AddressPage[] = [
              ...sqliteAddressPages(snapshot.sqlite, snapshot.db, filter, schema, limit, pageSize),
            ];
            const got = pages.map((page) => page.text.split('\n'));
            assert.deepEqual(
              got.flat(),
              expected.slice(0, limit),
              `${JSON.stringify(variant)} ${pageSize} ${limit}`,
            );
            for (const [i, page] of pages.entries()) {
              assert.equal(page.count, got[i]?.length);
              assert.ok(page.count <= pageSize && page.count > 0);
            }
          }
        }
      }
    } finally {
      await snapshot.release();
    }
  });

  it('lists in SPEC order (confidence, lastSeen, then ip as tie-break) without allowlisted addresses', async () => {
    const service = new BlacklistService(t.store, t.config.allowlist, { addressPageSize: 7 });
    const session = await service.open({ ...base, format: 'plaintext', aggregate: false }, null);
    let text = '';
    for await (const chunk of formatBlacklist('plaintext', session.entries(session.count), {
      meta: {
        generatedAt: now,
        scoreMinimum: 50,
        limit: session.count,
        count: session.count,
        truncated: false,
      },
    })) {
      text += chunk;
    }
    const allowed = (ip: string) => !(/^51\.0\.0\.([0-9]|1[0-5])$/.test(ip) || ip === '2a05:d014:ff:212::10');
    const expected = seeded
      .filter((r) => r.score >= 50 && allowed(r.ip))
      .sort(
        (a, b) =>
          b.score - a.score ||
          (b.lastSeen ?? 0) - (a.lastSeen ?? 0) ||
          (a.ip < b.ip ? 1 : a.ip > b.ip ? -1 : 0),
      )
      .map((r) => r.ip);
    assert.ok(expected.length > 500);
    assert.equal(text, `${expected.join('\n')}\n`);
  });

  it('writes every format byte for byte as the Kysely path does, aggregated or not, cut or not', async () => {
    const raw = new BlacklistService(t.store, t.config.allowlist, { addressPageSize: 7 });
    const kysely = new BlacklistService(t.store, t.config.allowlist, {
      rawSqlite: false,
      addressPageSize: 7,
    });
    const render = async (
      service: BlacklistService,
      params: BlacklistParams,
      cut: boolean,
      readAhead = false,
    ) => {
      const session = await service.open(params, null, { readAhead });
      const count = cut ? Math.min(session.count, 123) : session.count;
      const etag = await session.etagFor(count);
      let text = '';
      const meta = {
        generatedAt: now,
        scoreMinimum: params.scoreMinimum,
        limit: count,
        count,
        truncated: cut,
      };
      for await (const chunk of formatBlacklist(params.format, session.entries(count), { meta }))
        text += chunk;
      return { text, etag, count: session.count };
    };
    let compared = 0;
    for (const format of BLACKLIST_FORMATS) {
      for (const aggregate of [false, true]) {
        for (const variant of variants) {
          for (const cut of [false, true]) {
            const params: BlacklistParams = { ...base, ...variant, format, aggregate };
            const a = await render(raw, params, cut);
            const b = await render(kysely, params, cut);
            const label = `${format} aggregate=${aggregate} ${JSON.stringify(variant)} cut=${cut}`;
            assert.equal(a.count, b.count, label);
            assert.equal(a.etag, b.etag, label);
            assert.equal(a.text, b.text, label);
            // Read-ahead (aggregate: ETag and range set from one read) gives the same ETag and bytes.
            const c = await render(raw, params, cut, true);
            assert.equal(c.count, b.count, `${label} readAhead`);
            assert.equal(c.etag, b.etag, `${label} readAhead`);
            assert.equal(c.text, b.text, `${label} readAhead`);
            compared++;
          }
        }
      }
    }
    assert.equal(compared, BLACKLIST_FORMATS.length * 2 * variants.length * 2);
    // The aggregated plaintext collapses the full /24 and the full IPv6 /120 less its allowlisted address.
    const aggregated = await render(raw, { ...base, format: 'plaintext', aggregate: true }, false);
    assert.match(aggregated.text, /^51\.1\.0\.0\/24$/m);
    assert.match(aggregated.text, /^2a05:d014:ff:212::\/124$/m);
    assert.doesNotMatch(aggregated.text, /^2a05:d014:ff:212::10$/m);
  });
});
