// Feed CIDR listings in GET /v1/key/blacklist on every engine (decision 0703, case 008): scores as a check
// gives them, filters, order, overlap, allowlist split, every format, quota cut, ETag; raw vs Kysely paths.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildRangeSet, toCidrTexts } from '../src/core/cidr-aggregate.js';
import { type IpAddress, parseCidr } from '../src/core/ip.js';
import { buildApp } from '../src/http/build-app.js';
import { importFeed } from '../src/ingest/feed-import.js';
import { ListBenignSources } from '../src/services/benign-sources.js';
import { BlacklistService } from '../src/services/blacklist-service.js';
import type { GeoLookup } from '../src/services/geo-lookup.js';
import { ENGINES, skipReason } from './helpers/engines.js';
import { seedReputations, v4Range } from './helpers/seed-reputations.js';
import { bearer, createTestApp, type TestApp } from './helpers/test-app.js';

// Country/ASN tables stand-in (the real ones are 30 MB of CSV): 46.* is NL/AS1111, 47.* US/AS2222.
const GEO: GeoLookup = {
  loaded: true,
  load: async () => {},
  lookup: (ip: IpAddress) =>
    ip.text.startsWith('46.')
      ? { countryCode: 'NL', asn: '1111', asnOrg: 'Example NL' }
      : ip.text.startsWith('47.')
        ? { countryCode: 'US', asn: '2222', asnOrg: 'Example US' }
        : { countryCode: null, asn: null, asnOrg: null },
};

// A whitelist source (factor 0.5) over 46.1.0.64/26: that part of a feed CIDR scores half.
const benign = () =>
  new ListBenignSources([
    {
      definition: { name: 'test-crawler', factor: 0.5, kind: 'crawler', file: 'unused' },
      lines: ['46.1.0.64/26'],
    },
  ]);

/** True when no two entries overlap (each entry a CIDR or a bare address). */
function disjoint(entries: readonly string[]): boolean {
  const ranges = entries.map((text) => {
    const parsed = parseCidr(text.includes('/') ? text : `${text}/${text.includes(':') ? 128 : 32}`);
    if (!parsed.ok) throw new Error(`not a CIDR: ${text}`);
    return toCidrTexts(buildRangeSet([parsed.cidr.text]));
  });
  const union = toCidrTexts(buildRangeSet(ranges.flat()));
  const size = (cidrs: readonly string[]) =>
    cidrs.reduce((sum, c) => {
      const [address, prefix] = c.split('/');
      const bits =
        (address?.includes(':') ? 128 : 32) - Number(prefix ?? (address?.includes(':') ? 128 : 32));
      return sum + 2n ** BigInt(bits);
    }, 0n);
  return size(union) === ranges.reduce((sum, r) => sum + size(r), 0n);
}

for (const engine of ENGINES) {
  describe(`blacklist with feed CIDR listings (${engine})`, { skip: skipReason(engine) }, () => {
    let t: TestApp;
    let key: string;
    let dir: string;
    const file = (name: string, content: string) => {
      const path = join(dir, name);
      writeFileSync(path, content);
      return path;
    };

    before(async () => {
      t = await createTestApp(engine, {}, { services: { geo: GEO, benign: benign() } });
      key = await t.key('unlimited');
      dir = mkdtempSync(join(tmpdir(), 'vakt-feed-cidr-'));
      // Feed a lists a /24, a /16 and an IPv6 /64; feed b the lower half of the /24 (two feeds score more).
      await importFeed(t.services, [file('a.txt', '46.1.0.0/24\n47.2.0.0/16\n2a05:d014:ff:212::/64\n')], {
        name: 'a',
        trust: 1,
      });
      await importFeed(t.services, [file('b.txt', '46.1.0.0/25\n')], { name: 'b', trust: 1 });
      await seedReputations(t.store.db, [
        { ip: '51.0.0.1', score: 95 },
        { ip: '46.1.0.10', score: 90 },
        { ip: '47.2.3.4', score: 48 },
        { ip: '51.0.0.3', score: 30 },
      ]);
    });
    after(async () => {
      await t?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    const get = (query: string, headers: Record<string, string> = {}, app = t.app) =>
      app.inject({
        method: 'GET',
        url: `/v1/key/blacklist${query}`,
        headers: { ...bearer(key), ...headers },
      });
    const ipsOf = async (query: string) =>
      (await get(query)).json().data.map((d: { ip: string }) => d.ip) as string[];
    const check = async (ip: string, query = '') =>
      (
        await t.app.inject({ method: 'GET', url: `/v1/key/check/${ip}${query}`, headers: bearer(key) })
      ).json();

    it('lists qualifying feed CIDRs in order, scored as a check scores their addresses, rows inside them not again', async () => {
      const res = await get('?scoreMinimum=45');
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json();
      assert.deepEqual(
        body.data.map((d: { ip: string }) => d.ip),
        ['51.0.0.1', '46.1.0.0/26', '46.1.0.128/25', '47.2.0.0/16', '2a05:d014:ff:212::/64'],
      );
      // Units: 5 entries plus the rows 46.1.0.10 and 47.2.3.4, written through the CIDRs that hold them.
      assert.equal(body.meta.count, 7);
      assert.equal(res.headers['x-daily-used'], '7');
      const cidr = body.data[1];
      assert.deepEqual(cidr, {
        ip: '46.1.0.0/26',
        confidenceLevel: 50,
        lastSeen: cidr.lastSeen,
        sessions: 0,
        protocols: [],
        countryCode: 'NL',
        asn: '1111',
        asnOrg: 'Example NL',
      });
      const inside: Record<string, string[]> = {
        '46.1.0.0/26': ['46.1.0.0', '46.1.0.63'],
        '46.1.0.128/25': ['46.1.0.129', '46.1.0.255'],
        '47.2.0.0/16': ['47.2.0.1', '47.2.255.255'],
        '2a05:d014:ff:212::/64': ['2a05:d014:ff:212::5', '2a05:d014:ff:212:ffff:ffff:ffff:ffff'],
      };
      for (const entry of body.data.slice(1) as { ip: string; confidenceLevel: number; lastSeen: number }[]) {
        for (const ip of inside[entry.ip] ?? []) {
          const checked = await check(ip);
          assert.equal(checked.confidenceLevel, entry.confidenceLevel, ip);
          assert.equal(Date.parse(checked.lastSeen), entry.lastSeen, ip);
        }
      }
      for (const ip of ['46.1.0.64', '46.1.0.127', '47.3.0.0', '51.0.0.2']) {
        assert.ok((await check(ip)).confidenceLevel < 45, ip);
      }
      // The whitelisted quarter scores half, so it is left out at 45 ...
      assert.equal((await check('46.1.0.70')).confidenceLevel, 25);
      // ... and ignoreWhitelist lists the /25 whole, as a check with ignoreWhitelist scores it.
      assert.equal((await check('46.1.0.70', '?ignoreWhitelist=true')).confidenceLevel, 50);
      assert.deepEqual(await ipsOf('?scoreMinimum=45&ignoreWhitelist=true'), [
        '51.0.0.1',
        '46.1.0.0/25',
        '46.1.0.128/25',
        '47.2.0.0/16',
        '2a05:d014:ff:212::/64',
      ]);
      assert.deepEqual(await ipsOf('?scoreMinimum=50'), ['51.0.0.1', '46.1.0.0/26']);
      assert.deepEqual(await ipsOf('?scoreMinimum=51'), ['51.0.0.1', '46.1.0.10']);
      assert.deepEqual(await ipsOf(''), ['51.0.0.1', '46.1.0.0/26']);
    });

    it('applies the filters: version, country and ASN of the first address, no protocols or severity', async () => {
      const q = '?scoreMinimum=45';
      assert.deepEqual(await ipsOf(`${q}&ipVersion=6`), ['2a05:d014:ff:212::/64']);
      assert.deepEqual(await ipsOf(`${q}&ipVersion=4`), [
        '51.0.0.1',
        '46.1.0.0/26',
        '46.1.0.128/25',
        '47.2.0.0/16',
      ]);
      assert.deepEqual(await ipsOf(`${q}&onlyCountries=NL`), ['46.1.0.0/26', '46.1.0.128/25']);
      assert.deepEqual(await ipsOf(`${q}&exceptCountries=NL`), [
        '51.0.0.1',
        '46.1.0.10',
        '47.2.0.0/16',
        '2a05:d014:ff:212::/64',
      ]);
      assert.deepEqual(await ipsOf(`${q}&onlyAsn=AS2222`), ['47.2.0.0/16']);
      // 47.2.3.4 (no ASN of its own) is listed by itself once the /16 holding it is filtered out.
      assert.deepEqual(await ipsOf(`${q}&exceptAsn=2222,1111`), [
        '51.0.0.1',
        '46.1.0.10',
        '47.2.3.4',
        '2a05:d014:ff:212::/64',
      ]);
      for (const filter of ['protocols=ssh', 'minSeverity=low']) {
        assert.ok(
          (await ipsOf(`${q}&${filter}`)).every((ip) => !ip.includes('/')),
          filter,
        );
      }
    });

    it('writes the same list in every format, without overlaps, and aggregates rows with feed CIDRs', async () => {
      const q = '?scoreMinimum=45';
      const json = await ipsOf(q);
      assert.ok(disjoint(json));
      assert.equal((await get(`${q}&format=plaintext`)).body, `${json.join('\n')}\n`);
      const csv = (await get(`${q}&format=csv`)).body.trim().split('\n').slice(1);
      assert.deepEqual(
        csv.map((line) => line.split(',')[0]),
        json,
      );
      assert.equal((await get(`${q}&format=nginx`)).body.match(/^\S+ 1;$/gm)?.length, json.length);
      assert.match((await get(`${q}&format=nginx`)).body, /^47\.2\.0\.0\/16 1;$/m);
      assert.match((await get(`${q}&format=ipset`)).body, /^add \S+ 2a05:d014:ff:212::\/64 -exist$/m);
      assert.match(
        (await get(`${q}&format=nftables`)).body,
        /add element inet vakt v4net \{[^}]*46\.1\.0\.128\/25/,
      );
      const aggregated = ['46.1.0.0/26', '46.1.0.128/25', '47.2.0.0/16', '51.0.0.1', '2a05:d014:ff:212::/64'];
      const plain = await get(`${q}&format=plaintext&aggregate=true`);
      assert.equal(plain.body, `${aggregated.join('\n')}\n`);
      const aggregatedJson = (await get(`${q}&aggregate=true`)).json();
      assert.equal(aggregatedJson.meta.count, 7);
      assert.deepEqual(
        aggregatedJson.data.map((d: { ip: string }) => d.ip),
        aggregated,
      );
      // The /16 holds the row 47.2.3.4 (48): lowest member confidence 45, its session counted.
      assert.deepEqual(
        aggregatedJson.data.find((d: { ip: string }) => d.ip === '47.2.0.0/16'),
        {
          ip: '47.2.0.0/16',
          confidenceLevel: 45,
          lastSeen: aggregatedJson.data[2].lastSeen,
          sessions: 1,
          protocols: [],
          countryCode: null,
          asn: null,
          asnOrg: null,
        },
      );
      for (const format of ['ipset', 'nftables', 'nginx', 'csv']) {
        const body = (await get(`${q}&format=${format}&aggregate=true`)).body;
        for (const cidr of aggregated) assert.ok(body.includes(cidr), `${format} ${cidr}`);
        assert.ok(!body.includes('46.1.0.10'), format);
      }
    });

    it('cuts feed CIDRs with the day remainder in list order and charges one unit per entry', async () => {
      const created = await t.services.keys.create({ tier: 'free' });
      const k = created.key;
      await t.services.quota.consume({
        keyId: created.id,
        counter: 'blacklist',
        units: 4997,
        limit: 5000,
        partial: false,
        now: t.clock.now(),
      });
      const res = await t.app.inject({
        method: 'GET',
        url: '/v1/key/blacklist?scoreMinimum=45',
        headers: bearer(k),
      });
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json();
      // 51.0.0.1, 46.1.0.10 (inside the /26, written through it), 46.1.0.0/26.
      assert.deepEqual(
        body.data.map((d: { ip: string }) => d.ip),
        ['51.0.0.1', '46.1.0.0/26'],
      );
      assert.equal(body.meta.count, 3);
      assert.equal(body.meta.truncated, true);
      assert.equal(res.headers['x-blacklist-truncated'], 'true');
      assert.equal(res.headers['x-daily-remaining'], '0');
    });

    it('splits a feed CIDR around allowlisted addresses added after the import', async () => {
      const guarded = await createTestApp(
        engine,
        { VAKT_ALLOWLIST: '46.1.0.200,47.2.128.0/17' },
        { database: t.database, services: { geo: GEO, benign: benign() } },
      );
      try {
        const k = await guarded.key('unlimited');
        const res = await guarded.app.inject({
          method: 'GET',
          url: '/v1/key/blacklist?scoreMinimum=45&format=plaintext',
          headers: bearer(k),
        });
        const lines = res.body.trim().split('\n');
        assert.deepEqual(lines, [
          '51.0.0.1',
          '46.1.0.0/26',
          '46.1.0.128/26',
          '46.1.0.192/29',
          '46.1.0.201',
          '46.1.0.202/31',
          '46.1.0.204/30',
          '46.1.0.208/28',
          '46.1.0.224/27',
          '47.2.0.0/17',
          '2a05:d014:ff:212::/64',
        ]);
        const aggregated = await guarded.app.inject({
          method: 'GET',
          url: '/v1/key/blacklist?scoreMinimum=45&format=nftables&aggregate=true',
          headers: bearer(k),
        });
        assert.ok(!/46\.1\.0\.128\/25|47\.2\.0\.0\/16/.test(aggregated.body));
        assert.match(aggregated.body, /46\.1\.0\.201/);
      } finally {
        await guarded.close();
      }
    });

    if (engine === 'sqlite') {
      it('gives the same bytes and ETags on the raw SQLite paths and the Kysely path', async () => {
        const options = { feeds: { scorer: t.services.scorer, benign: t.services.benign, geo: GEO } };
        const kysely = await buildApp({
          ...t.services,
          blacklist: new BlacklistService(t.store, t.config.allowlist, { ...options, rawSqlite: false }),
        });
        const small = await buildApp({
          ...t.services,
          blacklist: new BlacklistService(t.store, t.config.allowlist, { ...options, addressPageSize: 1 }),
        });
        try {
          for (const format of ['json', 'plaintext', 'csv', 'ipset', 'nftables', 'nginx']) {
            for (const extra of [
              '',
              '&aggregate=true',
              '&limit=3',
              '&limit=4&aggregate=true',
              '&ipVersion=4',
            ]) {
              const query = `?scoreMinimum=45&format=${format}${extra}`;
              const reference = await get(query);
              for (const app of [kysely, small]) {
                const other = await get(query, {}, app);
                const strip = (text: string) =>
                  text.replace(/"generatedAt":\d+/, '').replace(/generated \S+/, '');
                assert.equal(strip(other.body), strip(reference.body), query);
                assert.equal(other.headers.etag, reference.headers.etag, query);
                // With If-None-Match there is no read-ahead: same ETag, a 304.
                const conditional = await get(
                  query,
                  { 'if-none-match': String(reference.headers.etag) },
                  app,
                );
                assert.equal(conditional.statusCode, 304, query);
              }
            }
          }
        } finally {
          await kysely.close();
          await small.close();
        }
      });
    }

    it('changes the ETag when the feed listings change, and answers 304 while they do not', async () => {
      const query = '?scoreMinimum=45&format=nftables&aggregate=true';
      const first = await get(query);
      const etag = String(first.headers.etag);
      assert.equal((await get(query, { 'if-none-match': etag })).statusCode, 304);
      await importFeed(t.services, [file('b2.txt', '46.1.0.128/26\n')], { name: 'b', trust: 1 });
      const changed = await get(query, { 'if-none-match': etag });
      assert.equal(changed.statusCode, 200);
      assert.notEqual(changed.headers.etag, etag);
      // Same output would keep the ETag; a trust change that moves the scores changes it.
      const again = String(changed.headers.etag);
      await importFeed(t.services, [file('a.txt', '46.1.0.0/24\n47.2.0.0/16\n2a05:d014:ff:212::/64\n')], {
        name: 'a',
        trust: 0.9,
      });
      const rescored = await get(query, { 'if-none-match': again });
      assert.equal(rescored.statusCode, 200);
      assert.notEqual(rescored.headers.etag, again);
    });
  });

  describe(`blacklist tier cap with feed CIDR listings (${engine})`, { skip: skipReason(engine) }, () => {
    let t: TestApp;
    let dir: string;

    before(async () => {
      t = await createTestApp(engine, {}, { services: { geo: GEO } });
      dir = mkdtempSync(join(tmpdir(), 'vakt-feed-cidr-cap-'));
      const a = join(dir, 'a.txt');
      const b = join(dir, 'b.txt');
      writeFileSync(a, '46.1.0.0/24\n2a05:d014:ff:212::/64\n');
      writeFileSync(b, '46.1.0.0/25\n');
      await importFeed(t.services, [a], { name: 'a', trust: 1 });
      await importFeed(t.services, [b], { name: 'b', trust: 1 });
      await seedReputations(t.store.db, [
        { ip: '46.1.0.10', score: 90 },
        ...v4Range(60, 0, 4998).map((ip) => ({ ip, score: 60 })),
      ]);
    });
    after(async () => {
      await t?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('cuts at the free tier cap in list order: rows, then the feed CIDRs that still fit', async () => {
      const k = await t.key('free');
      for (const aggregate of [false, true]) {
        const res = await t.app.inject({
          method: 'GET',
          url: `/v1/key/blacklist?scoreMinimum=45&format=plaintext&aggregate=${aggregate}`,
          headers: bearer(await t.key('free')),
        });
        assert.equal(res.statusCode, 200);
        assert.equal(res.headers['x-daily-used'], '5000');
        assert.equal(res.headers['x-blacklist-truncated'], 'true');
        const lines = res.body.trim().split('\n');
        assert.ok(lines.includes('46.1.0.0/25'));
        assert.ok(!lines.some((line) => line.startsWith('46.1.0.128') || line.startsWith('2a05')));
        assert.ok(!lines.includes('46.1.0.10'));
        if (!aggregate) assert.equal(lines.length, 4999);
      }
      const json = (
        await t.app.inject({ method: 'GET', url: '/v1/key/blacklist?scoreMinimum=45', headers: bearer(k) })
      ).json();
      assert.equal(json.meta.count, 5000);
      assert.equal(json.meta.truncated, true);
      assert.equal(json.data.at(-1).ip, '46.1.0.0/25');
      assert.equal(json.data.length, 4999);
      assert.ok(!json.data.some((d: { ip: string }) => d.ip === '46.1.0.10'));
    });
  });
}
