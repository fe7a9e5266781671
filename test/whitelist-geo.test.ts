// Whitelist and enrichment on every engine: research-scanner discount, ignoreWhitelist, refreshed lists, country/ASN columns.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseCidr, parseIp } from '../src/core/ip.js';
import { ListBenignSources, saveBenignList } from '../src/services/benign-sources.js';
import { CsvGeoLookup } from '../src/services/geo-lookup.js';
import { isAllowlisted } from '../src/services/services.js';
import { getReputation } from '../src/store/reputation-repository.js';
import { ENGINES, skipReason } from './helpers/engines.js';
import { bearer, createTestApp, type TestApp } from './helpers/test-app.js';

// One load shared by both engines: the tables take a few seconds to read.
const geo = new CsvGeoLookup();
const CENSYS = '66.132.148.10'; // inside 66.132.148.0/24 of the shipped Censys list

function ip(text: string) {
  const parsed = parseIp(text);
  if (!parsed.ok) throw new Error(text);
  return parsed.ip;
}

describe('shipped benign lists', () => {
  const benign = ListBenignSources.shipped();
  it('matches research scanners, crawlers and CDNs with their factors', () => {
    assert.deepEqual(benign.match(ip(CENSYS)), { source: 'censys', factor: 0.25 });
    assert.deepEqual(benign.match(ip('66.249.66.1')), { source: 'googlebot', factor: 0.1 });
    assert.deepEqual(benign.match(ip('104.16.0.1')), { source: 'cloudflare', factor: 0.8 });
    assert.equal(benign.match(ip('45.83.12.1')), null);
    assert.ok(benign.describe().every((s) => s.entries > 0));
  });
  it('skips lines that are not addresses (the URL in the Censys IPv6 list)', () => {
    assert.equal(benign.describe().find((s) => s.name === 'censys')?.entries, 17);
  });
});

describe('operator allowlist helper', () => {
  it('answers for addresses inside the configured CIDRs only', () => {
    const cidr = parseCidr('45.83.0.0/16');
    assert.ok(cidr.ok);
    const config = { allowlist: [cidr.cidr] };
    assert.equal(isAllowlisted(config, ip('45.83.1.1').key), true);
    assert.equal(isAllowlisted(config, ip('45.84.1.1').key), false);
    assert.equal(isAllowlisted({ allowlist: [] }, ip('45.83.1.1').key), false);
  });
});

for (const engine of ENGINES) {
  describe(`whitelist and geolocation (${engine})`, { skip: skipReason(engine) }, () => {
    let t: TestApp;
    const keys: string[] = [];
    const check = async (address: string, query = '') =>
      (
        await t.app.inject({
          method: 'GET',
          url: `/v1/key/check/${address}${query}`,
          headers: bearer(keys[0] ?? ''),
        })
      ).json();
    const report = async (address: string, key: string) => {
      const res = await t.app.inject({
        method: 'POST',
        url: '/v1/key/report',
        headers: bearer(key),
        payload: { ip: address, category: 'port_scan', protocol: 'ssh' },
      });
      assert.equal(res.statusCode, 200, res.body);
    };

    before(async () => {
      await geo.load();
      t = await createTestApp(engine, {}, { services: { geo } });
      for (let i = 0; i < 3; i++) keys.push(await t.key('tier_1'));
    });
    after(async () => t?.close());

    it('marks a research scanner whitelisted and discounts its score; ignoreWhitelist returns the raw score', async () => {
      for (const key of keys) await report(CENSYS, key);
      const checked = await check(CENSYS);
      assert.equal(checked.whitelisted, true);
      assert.equal(checked.whitelistSource, 'censys');
      assert.equal(checked.scoreBreakdown.whitelistFactor, 0.25);
      const raw = await check(CENSYS, '?ignoreWhitelist=true');
      assert.ok(raw.confidenceLevel > checked.confidenceLevel);
      const row = await getReputation(t.store.db, CENSYS);
      assert.equal(row?.score, checked.confidenceLevel);
      assert.equal(row?.score_raw, raw.confidenceLevel);
      assert.equal(raw.whitelisted, true);
    });

    it('applies a refreshed list stored by `vakt whitelist refresh`', async () => {
      await saveBenignList(t.store.db, 'modat', ['45.83.200.0/24'], t.clock.now());
      const benign = ListBenignSources.shipped();
      await benign.applyStored(t.store.db);
      assert.equal(benign.match(ip('45.83.200.9'))?.source, 'modat');
      assert.equal(benign.describe().find((s) => s.name === 'modat')?.entries, 1);
    });

    it('stores country and ASN when a row is created and serves them', async () => {
      await report('8.8.8.8', keys[0] ?? '');
      const row = await getReputation(t.store.db, '8.8.8.8');
      assert.equal(row?.country_code, 'US');
      assert.equal(row?.asn, '15169');
      const checked = await check('8.8.8.8');
      assert.deepEqual(checked.geolocation, {
        countryCode: 'US',
        countryName: 'United States',
        city: null,
        asn: '15169',
        asnOrg: 'Google LLC',
        isTor: false,
        isProxy: false,
      });
    });

    it('stores country and ASN on rows first created by sensor ingest and finds them by country', async () => {
      const sensor = await t.key('sensor');
      const start = t.clock.now() - 60_000;
      const base = { sensor: 'hp-geo', session: 'geo-1', srcIp: '1.1.1.1', srcPort: 40000, dstPort: 22 };
      const events = [
        { ...base, id: 'geo-1-c', ts: new Date(start).toISOString(), type: 'connect', protocol: 'ssh' },
        {
          ...base,
          id: 'geo-1-a',
          ts: new Date(start + 1000).toISOString(),
          type: 'auth',
          protocol: 'ssh',
          username: 'root',
          password: 'x',
          success: false,
        },
      ];
      const res = await t.app.inject({
        method: 'POST',
        url: '/v1/sensor/events',
        headers: bearer(sensor),
        payload: { events },
      });
      assert.equal(res.statusCode, 200, res.body);
      // Aggregation runs after the answer (decision 0630).
      await t.services.evidence.drain();
      const row = await getReputation(t.store.db, '1.1.1.1');
      assert.ok(row, 'the sensor created the row');
      assert.equal(row.country_code, 'AU');
      assert.equal(row.asn, '13335');
      const listed = await t.app.inject({
        url: '/v1/key/blacklist?scoreMinimum=1&onlyCountries=AU&format=json',
        headers: bearer(keys[0] ?? ''),
      });
      assert.equal(listed.statusCode, 200, listed.body);
      assert.match(listed.body, /"1\.1\.1\.1"/);
    });

    it('stores country and ASN on rows first created by a bulk report', async () => {
      const res = await t.app.inject({
        method: 'POST',
        url: '/v1/key/bulk-report',
        headers: bearer(keys[1] ?? ''),
        payload: {
          reports: [
            { ip: '9.9.9.9', category: 'port_scan' },
            { ip: '8.8.4.4', category: 'ddos' },
          ],
        },
      });
      assert.equal(res.statusCode, 200, res.body);
      await t.services.bulkQueue.drain(); // applied after the answer on SQLite (decision 0853)
      const quad9 = await getReputation(t.store.db, '9.9.9.9');
      assert.ok(quad9?.country_code, 'country stored');
      assert.equal(quad9?.asn, '19281');
      const google = await getReputation(t.store.db, '8.8.4.4');
      assert.equal(google?.country_code, 'US');
      assert.equal(google?.asn, '15169');
    });
  });
}
