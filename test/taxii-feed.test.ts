// The TAXII feed's content and paging (SPEC §4, case 012): schema-valid objects, four client paging styles over
// 2,500 same-second indicators, versions on score change, revocation, and exact per-indicator quota charging.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TAXII_MEDIA_TYPE } from '../src/core/taxii.js';
import { purgeOldVersions, revokeIndicator } from '../src/services/taxii-service.js';
import { ENGINES, skipReason } from './helpers/engines.js';
import { STIX_SCHEMAS_SKIP, validateStix } from './helpers/stix-validator.js';
import { changeScore, seededIp, seedListedIps } from './helpers/taxii-seed.js';
import { bearer, createTestApp, type TestApp } from './helpers/test-app.js';

const OBJECTS = '/taxii2/collections/threat-intel/objects/';
const SINGLE_COMPARISON = /^\[(ipv4-addr|ipv6-addr):value = '[0-9a-f.:]+'\]$/;

interface Page {
  status: number;
  body: { more: boolean; next?: string; objects?: { id: string; type: string }[] };
  first?: string;
  last?: string;
  contentType?: string;
}

async function fetchPage(t: TestApp, key: string, query: string): Promise<Page> {
  const response = await t.app.inject({ method: 'GET', url: `${OBJECTS}?${query}`, headers: bearer(key) });
  const first = response.headers['x-taxii-date-added-first'];
  const last = response.headers['x-taxii-date-added-last'];
  return {
    status: response.statusCode,
    body: response.json(),
    ...(typeof first === 'string' ? { first } : {}),
    ...(typeof last === 'string' ? { last } : {}),
    ...(typeof response.headers['content-type'] === 'string'
      ? { contentType: response.headers['content-type'] }
      : {}),
  };
}

/** Checks the envelope rules every page must follow; returns the page's indicator ids. */
function checkPage(page: Page): string[] {
  assert.equal(page.status, 200);
  assert.equal(page.contentType, TAXII_MEDIA_TYPE);
  if (page.body.more) assert.equal(typeof page.body.next, 'string');
  else assert.equal('next' in page.body, false, 'next must be absent when more is false');
  if (!page.body.objects) {
    assert.equal(page.first, undefined, 'an empty page has no date headers');
    assert.equal(page.last, undefined);
    return [];
  }
  assert.ok(page.body.objects.length > 0, 'a page with no objects has no objects key');
  assert.ok(page.first && page.last);
  return page.body.objects.filter((o) => o.type === 'indicator').map((o) => o.id);
}

const ORIGINAL = 'added_after=2025-01-01T00:00:00Z';

type Style = 'a' | 'b' | 'c' | 'd';

/** Pages through the whole collection the way one kind of client does; returns indicator ids and page count. */
async function pageThrough(t: TestApp, key: string, style: Style): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let query = style === 'a' ? `${ORIGINAL}&match[type]=indicator&limit=1000` : `${ORIGINAL}&limit=1000`;
  for (let pages = 1; pages < 20; pages++) {
    const page = await fetchPage(t, key, query);
    ids.push(...checkPage(page));
    if (style === 'd') {
      if (!page.last) return { ids, pages };
      query = `added_after=${page.last}&limit=1000`;
      continue;
    }
    if (!page.body.more) return { ids, pages };
    const next = encodeURIComponent(page.body.next ?? '');
    if (style === 'a') query = `next=${next}&limit=1000&${ORIGINAL}&match[type]=indicator`;
    else if (style === 'b') query = `next=${next}&${ORIGINAL}`;
    else query = `next=${next}&limit=1000`;
  }
  throw new Error('paging did not end');
}

for (const engine of ENGINES) {
  describe(`TAXII feed paging (${engine})`, { skip: skipReason(engine) }, () => {
    let t: TestApp;
    let key: string;
    const count = 2500;
    before(async () => {
      t = await createTestApp(engine);
      key = await t.key('unlimited');
      // One fake-clock instant: every version shares the same second (and millisecond).
      await seedListedIps(
        t.services,
        Array.from({ length: count }, (_, i) => seededIp(i + 1)),
      );
    });
    after(async () => t?.close());

    for (const [style, label] of [
      ['a', 'next + limit + the original filters'],
      ['b', 'next + the original added_after'],
      ['c', 'next + limit only (case 012)'],
      ['d', 'added_after = the previous X-TAXII-Date-Added-Last'],
    ] as [Style, string][]) {
      it(`returns every indicator exactly once paging with ${label}`, async () => {
        const { ids, pages } = await pageThrough(t, key, style);
        assert.equal(ids.length, count);
        assert.equal(new Set(ids).size, count);
        // 2,500 indicators + Identity + TLP:CLEAR = 2,502 objects: 3 pages (d needs one empty page to stop).
        if (style === 'b' || style === 'c') assert.equal(pages, 3);
      });
    }

    it('keeps the cursor page size when a follow-up drops limit', async () => {
      const first = await fetchPage(t, key, `${ORIGINAL}&limit=700`);
      const second = await fetchPage(t, key, `next=${encodeURIComponent(first.body.next ?? '')}`);
      assert.equal(second.body.objects?.length, 700);
    });

    it('gives every version a unique, strictly increasing microsecond date_added', async () => {
      const response = await t.app.inject({
        method: 'GET',
        url: '/taxii2/collections/threat-intel/manifest/?limit=1000',
        headers: bearer(key),
      });
      const dates = (response.json().objects as { date_added: string }[]).map((o) => o.date_added);
      for (let i = 1; i < dates.length; i++) {
        assert.ok((dates[i] ?? '') > (dates[i - 1] ?? ''), `${dates[i]} after ${dates[i - 1]}`);
      }
    });
  });

  describe(`TAXII feed content and versions (${engine})`, { skip: skipReason(engine) }, () => {
    let t: TestApp;
    let key: string;
    before(async () => {
      t = await createTestApp(engine);
      key = await t.key('unlimited');
    });
    after(async () => t?.close());

    const get = (url: string) => t.app.inject({ method: 'GET', url, headers: bearer(key) });

    it('publishes a new version on a score change, visible after the last seen date', async () => {
      const ip = seededIp(7001);
      await seedListedIps(t.services, [ip], { score: 60, categories: ['brute_force', 'port_scan'] });
      const first = await get(`${OBJECTS}?match[type]=indicator`);
      const lastSeen = first.headers['x-taxii-date-added-last'];
      const [v1] = first.json().objects;
      assert.equal(v1.confidence, 60);

      t.clock.advance(1000);
      await changeScore(t.services, ip, 72);
      const after = await get(`${OBJECTS}?added_after=${lastSeen}`);
      const [v2] = after.json().objects;
      assert.equal(after.json().objects.length, 1);
      assert.equal(v2.id, v1.id);
      assert.equal(v2.created, v1.created);
      assert.ok(v2.modified > v1.modified);
      assert.equal(v2.confidence, 72);

      // An unchanged score publishes nothing.
      await changeScore(t.services, ip, 72);
      assert.deepEqual(
        (await get(`${OBJECTS}?added_after=${after.headers['x-taxii-date-added-last']}`)).json(),
        {
          more: false,
        },
      );

      const versions = await get(`${OBJECTS}${v1.id}/versions/`);
      assert.equal(versions.headers['content-type'], TAXII_MEDIA_TYPE);
      assert.deepEqual(versions.json(), { more: false, versions: [v1.modified, v2.modified] });
      const byVersion = async (match: string) =>
        (await get(`${OBJECTS}${v1.id}/?match[version]=${match}`))
          .json()
          .objects.map((o: { confidence: number }) => o.confidence);
      assert.deepEqual(await byVersion('first'), [60]);
      assert.deepEqual(await byVersion('last'), [72]);
      assert.deepEqual(await byVersion('all'), [60, 72]);
      assert.deepEqual(await byVersion('first,last'), [60, 72]);
      assert.deepEqual(await byVersion(v1.modified), [60]);
      // The default listing shows only the newest version of each object.
      const listing = (await get(`${OBJECTS}?match[type]=indicator`)).json().objects;
      assert.deepEqual(
        listing.map((o: { confidence: number }) => o.confidence),
        [72],
      );
    });

    it('revokes when an IP leaves the feed and gives it a new id when it returns', async () => {
      const ip = seededIp(7002);
      await seedListedIps(t.services, [ip], { score: 80 });
      const [live] = (await get(`${OBJECTS}${ip}/`)).json().objects;
      t.clock.advance(1000);
      await changeScore(t.services, ip, 10);
      const [revoked] = (await get(`${OBJECTS}${ip}/`)).json().objects;
      assert.equal(revoked.id, live.id);
      assert.equal(revoked.revoked, true);
      assert.ok(revoked.modified > live.modified);
      t.clock.advance(1000);
      await changeScore(t.services, ip, 90);
      const [back] = (await get(`${OBJECTS}${ip}/`)).json().objects;
      assert.notEqual(back.id, live.id);
      assert.equal(back.revoked, undefined);
      assert.equal(back.confidence, 90);
    });

    it('revokeIndicator publishes a revoked version and purgeOldVersions drops it after 30 days', async () => {
      const ip = seededIp(7003);
      await seedListedIps(t.services, [ip], { score: 80 });
      const [live] = (await get(`${OBJECTS}${ip}/`)).json().objects;
      t.clock.advance(1000);
      const now = t.clock.now();
      assert.equal(await t.store.transaction((tx) => revokeIndicator(tx, ip, now)), true);
      assert.equal(await t.store.transaction((tx) => revokeIndicator(tx, ip, now)), false);
      const [revoked] = (await get(`${OBJECTS}${live.id}/`)).json().objects;
      assert.equal(revoked.revoked, true);
      // Earlier tests' revocations may go; this one is newer than the cut-off and stays.
      await purgeOldVersions(t.store.db, now - 1);
      assert.equal((await get(`${OBJECTS}${live.id}/`)).statusCode, 200);
      assert.equal(await purgeOldVersions(t.store.db, now + 30 * 86_400_000), 2);
      assert.equal((await get(`${OBJECTS}${live.id}/versions/`)).statusCode, 404);
    });

    it('serves only objects that validate against the OASIS STIX 2.1 schemas', {
      skip: STIX_SCHEMAS_SKIP,
    }, async () => {
      await seedListedIps(t.services, [seededIp(7004), '2001:db9::7004'], {
        score: 95,
        categories: ['malware', 'brute_force'],
      });
      await seedListedIps(t.services, [seededIp(7005)], { score: 80 });
      t.clock.advance(1000);
      await changeScore(t.services, seededIp(7005), 5);
      const objects = (await get(`${OBJECTS}?match[version]=all&limit=1000`)).json().objects as Record<
        string,
        unknown
      >[];
      assert.ok(objects.some((o) => o.revoked === true));
      assert.ok(objects.some((o) => o.type === 'identity'));
      assert.ok(objects.some((o) => o.type === 'marking-definition'));
      const identity = objects.find((o) => o.type === 'identity');
      for (const object of objects) {
        assert.deepEqual(validateStix(object), [], JSON.stringify(object));
        if (object.type !== 'indicator') continue;
        assert.match(String(object.pattern), SINGLE_COMPARISON);
        assert.ok(Date.parse(String(object.valid_until)) > Date.parse(String(object.valid_from)));
        assert.equal(object.created_by_ref, identity?.id);
        assert.deepEqual(object.object_marking_refs, [
          'marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487',
        ]);
        assert.deepEqual(object.indicator_types, ['malicious-activity']);
      }
    });
  });

  describe(`TAXII quota and threshold (${engine})`, { skip: skipReason(engine) }, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(engine, { VAKT_TAXII_SCORE_MINIMUM: '70' });
      await seedListedIps(
        t.services,
        Array.from({ length: 150 }, (_, i) => seededIp(9000 + i)),
        { score: 75 },
      );
      // Below the configured threshold of 70: never listed.
      await seedListedIps(t.services, [seededIp(9999)], { score: 65 });
    });
    after(async () => t?.close());

    it('lists only IPs at or above VAKT_TAXII_SCORE_MINIMUM', async () => {
      const key = await t.key('unlimited');
      const response = await t.app.inject({
        method: 'GET',
        url: `${OBJECTS}?match[type]=indicator&limit=1000`,
        headers: bearer(key),
      });
      assert.equal(response.json().objects.length, 150);
    });

    it("drops a free key's counter by exactly the number of indicators returned", async () => {
      const key = await t.key('free');
      const status = async () =>
        (await t.app.inject({ method: 'GET', url: '/v1/key/status', headers: bearer(key) })).json().quotas
          .taxii;
      const first = await t.app.inject({ method: 'GET', url: `${OBJECTS}?limit=100`, headers: bearer(key) });
      const objects = first.json().objects as { type: string }[];
      const indicators = objects.filter((o) => o.type === 'indicator').length;
      assert.equal(indicators, 98); // the Identity and TLP:CLEAR come first and are free
      assert.equal(first.headers['x-taxii-limit'], '1000');
      assert.equal(first.headers['x-taxii-remaining'], String(1000 - 98));
      assert.equal((await status()).used, 98);
      // Manifests and version lists are not charged.
      await t.app.inject({
        method: 'GET',
        url: '/taxii2/collections/threat-intel/manifest/',
        headers: bearer(key),
      });
      assert.equal((await status()).used, 98);
    });

    it('returns fewer objects when fewer units remain than the page, then 429', async () => {
      const created = await t.services.keys.create({ tier: 'free', quotaOverrides: { taxii: 30 } });
      const page = await t.app.inject({
        method: 'GET',
        url: `${OBJECTS}?match[type]=indicator&limit=100`,
        headers: bearer(created.key),
      });
      assert.equal(page.statusCode, 200);
      const body = page.json();
      assert.equal(body.objects.length, 30);
      assert.equal(body.more, true);
      assert.equal(page.headers['x-taxii-remaining'], '0');
      const refused = await t.app.inject({
        method: 'GET',
        url: `${OBJECTS}?next=${encodeURIComponent(body.next)}`,
        headers: bearer(created.key),
      });
      assert.equal(refused.statusCode, 429);
      assert.equal(refused.headers['content-type'], TAXII_MEDIA_TYPE);
      assert.ok(Number(refused.headers['retry-after']) > 0);
      assert.equal(refused.json().error_code, 'quota_exceeded');
    });
  });

  describe(`TAXII publishing from real reports and the allowlist (${engine})`, {
    skip: skipReason(engine),
  }, () => {
    it('publishes an indicator when a report lifts an IP over the threshold', async () => {
      const t = await createTestApp(engine, { VAKT_TAXII_SCORE_MINIMUM: '1' });
      try {
        const key = await t.key('unlimited');
        const report = await t.app.inject({
          method: 'POST',
          url: '/v1/key/report',
          headers: bearer(key),
          payload: { ip: '45.60.70.80', category: 'brute_force' },
        });
        assert.equal(report.statusCode, 200);
        const [indicator] = (
          await t.app.inject({ method: 'GET', url: `${OBJECTS}45.60.70.80/`, headers: bearer(key) })
        ).json().objects;
        assert.equal(indicator.confidence, report.json().confidenceLevel);
        assert.deepEqual(indicator.labels, ['brute_force']);
      } finally {
        await t.close();
      }
    });

    it('revokes indicators of IPs allowlisted after they were listed, at start-up', async () => {
      const first = await createTestApp(engine);
      const database = first.database;
      await seedListedIps(first.services, [seededIp(5), seededIp(6)]);
      await first.app.close();
      await first.store.close();
      const second = await createTestApp(engine, { VAKT_ALLOWLIST: `${seededIp(5)}/32` }, database);
      try {
        const key = await second.key('unlimited');
        const objects = (
          await second.app.inject({
            method: 'GET',
            url: `${OBJECTS}?match[type]=indicator`,
            headers: bearer(key),
          })
        ).json().objects as { pattern: string; revoked?: boolean }[];
        assert.equal(objects.length, 2);
        assert.equal(objects.find((o) => o.pattern.includes(`'${seededIp(5)}'`))?.revoked, true);
        assert.equal(objects.find((o) => o.pattern.includes(`'${seededIp(6)}'`))?.revoked, undefined);
        // The same collection id and Identity survive the restart.
        const ids = (
          await second.app.inject({
            method: 'GET',
            url: `${OBJECTS}?match[type]=identity`,
            headers: bearer(key),
          })
        ).json().objects;
        assert.equal(ids.length, 1);
      } finally {
        await second.close();
        await database.drop();
      }
    });
  });
}
