// GET /v1/key/blacklist on every engine: SPEC §3.2 filters, order, quota, ETag/304, aggregation, formats; case 006.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { ENGINES, skipReason } from './helpers/engines.js';
import { seedReputations, v4Range } from './helpers/seed-reputations.js';
import { bearer, createTestApp, type TestApp } from './helpers/test-app.js';

for (const engine of ENGINES) {
  describe(`blacklist (${engine})`, { skip: skipReason(engine) }, () => {
    let t: TestApp;
    let key: string;
    const now = Date.UTC(2026, 2, 15, 12);

    before(async () => {
      t = await createTestApp(engine, { VAKT_ALLOWLIST: '198.51.100.0/24,51.0.0.7' });
      key = await t.key('unlimited');
      await seedReputations(t.store.db, [
        {
          ip: '51.0.0.1',
          score: 95,
          lastSeen: now - 1000,
          countryCode: 'CN',
          asn: '4134',
          asnOrg: 'Chinanet',
        },
        { ip: '51.0.0.2', score: 95, lastSeen: now - 500, countryCode: 'RU', asn: '12389' },
        { ip: '51.0.0.3', score: 80, scoreRaw: 80, lastSeen: now, countryCode: 'CN', asn: '4134' },
        { ip: '51.0.0.4', score: 40, scoreRaw: 90, lastSeen: now, countryCode: 'US', asn: '15169' },
        { ip: '51.0.0.5', score: 10, lastSeen: now },
        { ip: '51.0.0.7', score: 99, lastSeen: now },
        { ip: '2a05:d014:ff:212::5', score: 70, lastSeen: now, countryCode: 'DE' },
      ]);
      // The evidence schema (max_severity, reputation_protocols) may not be merged yet; seed it directly.
      const columns = await sql<{ name: string }>`select column_name as name from information_schema.columns
        where table_name = 'reputations'`
        .execute(t.store.db)
        .catch(() =>
          sql<{ name: string }>`select name from pragma_table_info('reputations')`.execute(t.store.db),
        );
      if (!columns.rows.some((c) => c.name === 'max_severity')) {
        await sql`alter table reputations add column max_severity integer not null default 0`.execute(
          t.store.db,
        );
      }
      await sql`create table if not exists reputation_protocols (ip text not null, protocol text not null,
        sessions bigint not null, events bigint not null, primary key (ip, protocol))`.execute(t.store.db);
      await sql`update reputations set max_severity = 4 where ip = '51.0.0.1'`.execute(t.store.db);
      await sql`update reputations set max_severity = 2 where ip = '51.0.0.3'`.execute(t.store.db);
      await sql`insert into reputation_protocols values ('51.0.0.1', 'ssh', 10, 100), ('51.0.0.1', 'telnet', 2, 5),
        ('51.0.0.3', 'http', 1, 1)`.execute(t.store.db);
      t.services.blacklist.resetSchema();
    });
    after(async () => t?.close());

    const get = (query: string, withKey = key, headers: Record<string, string> = {}) =>
      t.app.inject({
        method: 'GET',
        url: `/v1/key/blacklist${query}`,
        headers: { ...bearer(withKey), ...headers },
      });
    const ipsOf = async (query: string) =>
      (await get(query)).json().data.map((d: { ip: string }) => d.ip) as string[];

    it('lists by confidence desc then lastSeen desc, with the SPEC JSON shape and no allowlisted address', async () => {
      const res = await get('');
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json();
      assert.deepEqual(
        body.data.map((d: { ip: string }) => d.ip),
        ['51.0.0.2', '51.0.0.1', '51.0.0.3', '2a05:d014:ff:212::5'],
      );
      assert.equal(body.meta.count, 4);
      assert.equal(body.meta.truncated, false);
      assert.equal(body.meta.scoreMinimum, 50);
      assert.equal(typeof body.meta.generatedAt, 'number');
      assert.deepEqual(body.data[1], {
        ip: '51.0.0.1',
        confidenceLevel: 95,
        lastSeen: now - 1000,
        sessions: 1,
        protocols: ['ssh', 'telnet'],
        countryCode: 'CN',
        asn: '4134',
        asnOrg: 'Chinanet',
      });
      assert.ok(res.headers['x-generated-at']);
      assert.match(String(res.headers.etag), /^"[A-Za-z0-9_-]+"$/);
    });

    it('applies every filter', async () => {
      assert.deepEqual(await ipsOf('?scoreMinimum=90'), ['51.0.0.2', '51.0.0.1']);
      assert.deepEqual(await ipsOf('?onlyCountries=cn'), ['51.0.0.1', '51.0.0.3']);
      assert.deepEqual(await ipsOf('?exceptCountries=CN,RU'), ['2a05:d014:ff:212::5']);
      assert.deepEqual(await ipsOf('?onlyAsn=AS4134'), ['51.0.0.1', '51.0.0.3']);
      assert.deepEqual(await ipsOf('?exceptAsn=4134,12389'), ['2a05:d014:ff:212::5']);
      assert.deepEqual(await ipsOf('?ipVersion=6'), ['2a05:d014:ff:212::5']);
      assert.deepEqual(await ipsOf('?ipVersion=4&limit=2'), ['51.0.0.2', '51.0.0.1']);
      assert.deepEqual(await ipsOf('?protocols=http,ftp'), ['51.0.0.3']);
      assert.deepEqual(await ipsOf('?minSeverity=medium'), ['51.0.0.1', '51.0.0.3']);
      assert.deepEqual(await ipsOf('?minSeverity=very_high'), ['51.0.0.1']);
      assert.deepEqual(await ipsOf('?ignoreWhitelist=true&scoreMinimum=85'), [
        '51.0.0.2',
        '51.0.0.1',
        '51.0.0.4',
      ]);
      assert.equal((await get('?minSeverity=extreme')).statusCode, 400);
      assert.equal((await get('?onlyCountries=CHN')).statusCode, 400);
    });

    it('serves every format with its content type', async () => {
      const plain = await get('?plaintext=true');
      assert.equal(plain.body, '51.0.0.2\n51.0.0.1\n51.0.0.3\n2a05:d014:ff:212::5\n');
      assert.match(String(plain.headers['content-type']), /^text\/plain/);
      const csv = await get('?format=csv');
      assert.match(String(csv.headers['content-type']), /^text\/csv/);
      assert.equal(csv.body.trim().split('\n').length, 5);
      assert.match((await get('?format=nginx')).body, /^51\.0\.0\.2 1;$/m);
      assert.match((await get('?format=ipset')).body, /^add \S+ 51\.0\.0\.2 -exist$/m);
      assert.match((await get('?format=nftables')).body, /table inet/);
    });

    it('answers a matching If-None-Match with a free 304 and changes the ETag when the data changes', async () => {
      const k = await t.key('free');
      const first = await get('?format=plaintext', k);
      const etag = String(first.headers.etag);
      assert.equal(first.headers['x-daily-used'], '4');
      const again = await get('?format=plaintext', k, { 'if-none-match': etag });
      assert.equal(again.statusCode, 304);
      assert.equal(again.body, '');
      const status = (
        await t.app.inject({ method: 'GET', url: '/v1/key/status', headers: bearer(k) })
      ).json();
      assert.equal(status.quotas.blacklist.used, 4);
      assert.notEqual(String((await get('?format=json', k)).headers.etag), etag);
      await sql`update reputations set score = 81, score_updated_at = score_updated_at + 1 where ip = '51.0.0.3'`.execute(
        t.store.db,
      );
      const changed = await get('?format=plaintext', k, { 'if-none-match': etag });
      assert.equal(changed.statusCode, 200);
      assert.notEqual(changed.headers.etag, etag);
    });

    it('aggregate=true: ETag of the listed addresses, so a rescore that changes no listed address is a 304 (decision 0854)', async () => {
      const k = await t.key('free');
      const query = '?format=plaintext&aggregate=true';
      const first = await get(query, k);
      assert.equal(first.statusCode, 200);
      const etag = String(first.headers.etag);
      // An unlisted address rescored (still below the minimum), and a listed one rescored in place.
      await sql`update reputations set score = 11, score_updated_at = score_updated_at + 1 where ip = '51.0.0.5'`.execute(
        t.store.db,
      );
      await sql`update reputations set score = 82, score_updated_at = score_updated_at + 1 where ip = '51.0.0.3'`.execute(
        t.store.db,
      );
      const same = await get(query, k, { 'if-none-match': etag });
      assert.equal(same.statusCode, 304);
      // The same without If-None-Match (the read-ahead path) gives the same ETag.
      assert.equal(String((await get(query, k)).headers.etag), etag);
      // A newly listed address changes it.
      await sql`update reputations set score = 60, score_updated_at = score_updated_at + 1 where ip = '51.0.0.5'`.execute(
        t.store.db,
      );
      const listed = await get(query, k, { 'if-none-match': etag });
      assert.equal(listed.statusCode, 200);
      assert.notEqual(listed.headers.etag, etag);
      assert.match(listed.body, /^51\.0\.0\.5$/m);
      await sql`update reputations set score = 10 where ip = '51.0.0.5'`.execute(t.store.db);
    });
  });

  describe(`blacklist cap and aggregation (${engine})`, { skip: skipReason(engine) }, () => {
    let t: TestApp;

    before(async () => {
      t = await createTestApp(engine);
      await seedReputations(t.store.db, [
        ...v4Range(60, 0, 8000).map((ip) => ({ ip, score: 60 })),
        // 203.0.113.0/24 is a documentation range, so use public stand-ins: all of 61.1.1.0/24, and
        // 61.1.2.0/24 less one address; 2a05:d014:ff:212::/120 whole and :213::/120 less one.
        ...Array.from({ length: 256 }, (_, i) => ({ ip: `61.1.1.${i}`, score: 90 })),
        ...Array.from({ length: 256 }, (_, i) => ({ ip: `61.1.2.${i}`, score: 90 })).filter(
          (r) => r.ip !== '61.1.2.77',
        ),
        ...Array.from({ length: 256 }, (_, i) => ({ ip: `2a05:d014:ff:212::${i.toString(16)}`, score: 90 })),
        ...Array.from({ length: 256 }, (_, i) => ({
          ip: `2a05:d014:ff:213::${i.toString(16)}`,
          score: 90,
        })).filter((r) => r.ip !== '2a05:d014:ff:213::5'),
      ]);
    });
    after(async () => t?.close());

    const get = (query: string, k: string) =>
      t.app.inject({ method: 'GET', url: `/v1/key/blacklist${query}`, headers: bearer(k) });

    it('cuts a free key to 5,000 with truncated, charges 5,000, then answers 429 (case 006)', async () => {
      const k = await t.key('free');
      const res = await get('?limit=9999999&plaintext=true&scoreMinimum=50&ipVersion=4', k);
      assert.equal(res.statusCode, 200, res.body.slice(0, 200));
      assert.equal(res.body.trim().split('\n').length, 5000);
      assert.equal(res.headers['x-blacklist-truncated'], 'true');
      assert.equal(res.headers['x-daily-used'], '5000');
      const second = await get('?limit=9999999&plaintext=true&scoreMinimum=50&ipVersion=4', k);
      assert.equal(second.statusCode, 429);
      assert.equal(second.json().code, 'quota_exceeded');
      assert.ok(Number(second.headers['retry-after']) > 0);
    });

    it('cuts to the day remainder with meta.truncated, charging per IP returned', async () => {
      const k = await t.key('free');
      assert.equal((await get('?limit=4000&scoreMinimum=50', k)).statusCode, 200);
      const res = await get('?limit=9999999&scoreMinimum=50', k);
      const body = res.json();
      assert.equal(body.meta.count, 1000);
      assert.equal(body.data.length, 1000);
      assert.equal(body.meta.truncated, true);
      assert.equal(res.headers['x-daily-remaining'], '0');
    });

    it("a caller's own small limit is not truncation", async () => {
      const k = await t.key('free');
      const body = (await get('?limit=10', k)).json();
      assert.equal(body.meta.count, 10);
      assert.equal(body.meta.truncated, false);
    });

    it('aggregates exactly: a full block collapses, a block with a hole does not; units per IP', async () => {
      const k = await t.key('unlimited');
      const res = await get('?aggregate=true&plaintext=true&scoreMinimum=85', k);
      const lines = res.body.trim().split('\n');
      assert.ok(lines.includes('61.1.1.0/24'));
      assert.ok(lines.includes('2a05:d014:ff:212::/120'));
      assert.ok(!lines.some((l) => l.startsWith('61.1.2.0/24')));
      assert.ok(!lines.includes('61.1.2.77'));
      assert.ok(!lines.some((l) => l === '2a05:d014:ff:213::/120' || l === '2a05:d014:ff:213::5'));
      assert.ok(lines.includes('61.1.2.0/26'));
      assert.equal(res.headers['x-daily-used'], String(256 + 255 + 256 + 255));
      const { aggregate } = await import('../src/core/cidr-aggregate.js');
      // Never overlapping: the sizes add up to the listed count, and re-aggregating changes nothing.
      const size = (l: string) => {
        const [address, prefix] = l.split('/');
        const bits =
          (address?.includes(':') ? 128 : 32) - Number(prefix ?? (address?.includes(':') ? 128 : 32));
        return 2 ** bits;
      };
      assert.equal(
        lines.reduce((sum, l) => sum + size(l), 0),
        1022,
      );
      assert.deepEqual(
        aggregate(lines)
          .map((c) => c.text)
          .sort(),
        [...lines].sort(),
      );
      const json = (await get('?aggregate=true&scoreMinimum=85', k)).json();
      assert.equal(json.meta.count, 1022);
      const block = json.data.find((d: { ip: string }) => d.ip === '61.1.1.0/24');
      assert.equal(block.confidenceLevel, 90);
      assert.equal(block.sessions, 256);
    });
  });
}
