// TAXII 2.1 wire behaviour real clients rely on (SPEC §4): routes with and without slashes, media type on every
// response, Accept, the three ways to authenticate, TAXII error bodies, limit/match/offset parsing.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TAXII_MEDIA_TYPE } from '../src/core/taxii.js';
import { ENGINES, skipReason } from './helpers/engines.js';
import { seededIp, seedListedIps } from './helpers/taxii-seed.js';
import { bearer, createTestApp, type TestApp } from './helpers/test-app.js';

const OBJECTS = '/taxii2/collections/threat-intel/objects/';

function assertTaxiiError(
  response: { statusCode: number; headers: Record<string, unknown>; body: string },
  status: number,
  code: string,
) {
  assert.equal(response.statusCode, status, response.body);
  assert.equal(response.headers['content-type'], TAXII_MEDIA_TYPE);
  const body = JSON.parse(response.body);
  assert.equal(body.http_status, String(status));
  assert.equal(body.error_code, code);
  assert.equal(typeof body.title, 'string');
  assert.equal(typeof body.description, 'string');
}

for (const engine of ENGINES) {
  describe(`TAXII protocol (${engine})`, { skip: skipReason(engine) }, () => {
    let t: TestApp;
    let key: string;
    before(async () => {
      t = await createTestApp(engine);
      key = await t.key('unlimited');
      await seedListedIps(t.services, [seededIp(1), seededIp(2), '2001:db9::1'], {
        categories: ['brute_force'],
      });
    });
    after(async () => t?.close());

    const get = (url: string, headers: Record<string, string> = bearer(key)) =>
      t.app.inject({ method: 'GET', url, headers });

    it('serves discovery as the API root, with and without the trailing slash', async () => {
      for (const url of ['/taxii2', '/taxii2/']) {
        const response = await get(url, {});
        assert.equal(response.statusCode, 200);
        assert.equal(response.headers['content-type'], TAXII_MEDIA_TYPE);
        const body = response.json();
        assert.deepEqual(body.api_roots, ['http://127.0.0.1:8080/taxii2/']);
        assert.equal(body.default, 'http://127.0.0.1:8080/taxii2/');
        assert.deepEqual(body.versions, ['application/taxii+json;version=2.1']);
        assert.equal(typeof body.max_content_length, 'number');
        assert.equal(typeof body.title, 'string');
      }
    });

    it('lists one public collection, reachable by id or alias', async () => {
      const list = await get('/taxii2/collections', {});
      assert.equal(list.statusCode, 200);
      assert.equal(list.headers['content-type'], TAXII_MEDIA_TYPE);
      const [collection] = list.json().collections;
      assert.equal(collection.alias, 'threat-intel');
      assert.equal(collection.can_read, true);
      assert.equal(collection.can_write, false);
      assert.deepEqual(collection.media_types, ['application/stix+json;version=2.1']);
      assert.match(collection.id, /^[0-9a-f-]{36}$/);
      for (const id of [collection.id, collection.id.toUpperCase(), 'threat-intel']) {
        for (const suffix of ['', '/']) {
          const one = await get(`/taxii2/collections/${id}${suffix}`, {});
          assert.equal(one.statusCode, 200);
          assert.equal(one.json().id, collection.id);
        }
      }
      assertTaxiiError(await get('/taxii2/collections/nope/', {}), 404, 'not_found');
      assertTaxiiError(await get('/taxii2/collections/nope/objects/'), 404, 'not_found');
      // The collection id stays the same for the life of the instance.
      assert.equal((await get('/taxii2/collections/', {})).json().collections[0].id, collection.id);
    });

    it('answers every authenticated route with and without the trailing slash', async () => {
      const id = (await get(OBJECTS)).json().objects.find((o: { type: string }) => o.type === 'indicator').id;
      for (const path of [
        OBJECTS,
        `/taxii2/collections/threat-intel/objects/${id}/`,
        `/taxii2/collections/threat-intel/objects/${id}/versions/`,
        '/taxii2/collections/threat-intel/manifest/',
      ]) {
        for (const url of [path, path.slice(0, -1)]) {
          const response = await get(url);
          assert.equal(response.statusCode, 200, `${url}: ${response.body}`);
          assert.equal(response.headers['content-type'], TAXII_MEDIA_TYPE);
        }
      }
    });

    it('authenticates with Bearer, ?key= and HTTP Basic (key as password)', async () => {
      const basic = `Basic ${Buffer.from(`anyone:${key}`).toString('base64')}`;
      assert.equal((await get(OBJECTS)).statusCode, 200);
      assert.equal((await get(`${OBJECTS}?key=${key}`, {})).statusCode, 200);
      assert.equal((await get(OBJECTS, { authorization: basic })).statusCode, 200);
    });

    it('refuses missing and unknown keys with 401, WWW-Authenticate and a TAXII error', async () => {
      for (const headers of [
        {},
        { authorization: 'Bearer sk_free_nope' },
        { authorization: 'Basic !!!' },
      ] as Record<string, string>[]) {
        const response = await get(OBJECTS, headers);
        assert.equal(response.statusCode, 401);
        assert.equal(response.headers['www-authenticate'], 'Basic realm="vakt"');
        assert.equal(response.headers['content-type'], TAXII_MEDIA_TYPE);
        assert.equal(response.json().http_status, '401');
      }
      assertTaxiiError(await get('/taxii2/status/abc/', {}), 401, 'missing_api_key');
      assertTaxiiError(await get('/taxii2/status/abc/'), 404, 'not_found');
    });

    it('refuses a disabled key with a TAXII 403', async () => {
      const created = await t.services.keys.create({ tier: 'free' });
      await t.services.keys.disable(created.id);
      assertTaxiiError(await get(OBJECTS, bearer(created.key)), 403, 'key_disabled');
    });

    it('parses Accept leniently and answers 406 only to explicit other types or versions', async () => {
      for (const accept of [
        '*/*',
        'application/*',
        'application/taxii+json',
        'application/taxii+json;version=2.1',
        'Application/TAXII+JSON; Version="2.1"',
        'application/json;q=0.9, application/taxii+json;version=2.1',
      ]) {
        const response = await get(OBJECTS, { ...bearer(key), accept });
        assert.equal(response.statusCode, 200, accept);
      }
      for (const accept of ['application/json', 'application/taxii+json;version=2.0', 'text/html']) {
        assertTaxiiError(await get(OBJECTS, { ...bearer(key), accept }), 406, 'not_acceptable');
        assertTaxiiError(await get('/taxii2/', { accept }), 406, 'not_acceptable');
      }
    });

    it("uses the TAXII media type and error body for Fastify's own 404 and for 405", async () => {
      assertTaxiiError(await get('/taxii2/no/such/route'), 404, 'not_found');
      assertTaxiiError(await get('/taxii2/collections/threat-intel/objects/a/b/c/d'), 404, 'not_found');
      for (const method of ['POST', 'PUT', 'DELETE'] as const) {
        const response = await t.app.inject({ method, url: OBJECTS, headers: bearer(key), payload: {} });
        assertTaxiiError(response, 405, 'method_not_allowed');
        assert.equal(response.headers.allow, 'GET, HEAD');
      }
      assertTaxiiError(await t.app.inject({ method: 'POST', url: '/taxii2' }), 405, 'method_not_allowed');
    });

    it('clamps large limits and refuses zero, negative and non-numeric ones', async () => {
      assert.equal((await get(`${OBJECTS}?limit=5000`)).statusCode, 200);
      assert.equal((await get(`${OBJECTS}?limit=99999999999999999999`)).statusCode, 200);
      for (const limit of ['0', '-1', 'abc', '1.5', '']) {
        if (limit === '') continue;
        assertTaxiiError(await get(`${OBJECTS}?limit=${limit}`), 400, 'invalid_parameter');
      }
      assert.equal((await get(`${OBJECTS}?limit=1`)).json().objects.length, 1);
    });

    it('refuses bad added_after, match[version] and next values with a TAXII 400', async () => {
      assertTaxiiError(await get(`${OBJECTS}?added_after=yesterday`), 400, 'invalid_parameter');
      assertTaxiiError(await get(`${OBJECTS}?match[version]=newest`), 400, 'invalid_parameter');
      assertTaxiiError(await get(`${OBJECTS}?next=garbage`), 400, 'invalid_parameter');
    });

    it('reads added_after in the forms clients send', async () => {
      for (const value of [
        '2025-01-01T00:00:00Z',
        '2025-01-01T00:00:00.000000Z',
        '2025-01-01T00:00:00+00:00',
        '2025-01-01T00:00:00%2B00:00',
        '2025-01-01T00:00:00',
        '2025-01-01',
      ]) {
        const response = await get(`${OBJECTS}?added_after=${value}`);
        assert.equal(response.statusCode, 200, value);
        assert.equal(response.json().objects.length, 5, value);
      }
      const future = await get(`${OBJECTS}?added_after=2099-01-01T00:00:00Z`);
      assert.deepEqual(future.json(), { more: false });
    });

    it('filters by match[type] and match[id], comma lists, raw and percent-encoded brackets', async () => {
      const all = (await get(OBJECTS)).json().objects as { id: string; type: string }[];
      assert.deepEqual(all.map((o) => o.type).sort(), [
        'identity',
        'indicator',
        'indicator',
        'indicator',
        'marking-definition',
      ]);
      const indicators = all.filter((o) => o.type === 'indicator');
      for (const query of [
        'match[type]=indicator',
        'match%5Btype%5D=indicator',
        'match%5btype%5d=indicator',
      ]) {
        assert.equal((await get(`${OBJECTS}?${query}`)).json().objects.length, 3, query);
      }
      const both = await get(`${OBJECTS}?match[type]=identity,marking-definition`);
      assert.equal(both.json().objects.length, 2);
      const ids = `${indicators[0]?.id},${indicators[1]?.id}`;
      assert.equal((await get(`${OBJECTS}?match[id]=${ids}`)).json().objects.length, 2);
      assert.equal((await get(`${OBJECTS}?match%5Bid%5D=${indicators[2]?.id}`)).json().objects.length, 1);
      assert.equal(
        (await get(`${OBJECTS}?match[id]=${indicators[0]?.id}&match[id]=${indicators[1]?.id}`)).json().objects
          .length,
        2,
      );
      assert.equal((await get(`${OBJECTS}?match[spec_version]=2.1`)).json().objects.length, 5);
      assert.deepEqual((await get(`${OBJECTS}?match[spec_version]=2.0`)).json(), { more: false });
    });

    it('skips objects with offset as the official CLI sends it', async () => {
      const all = (await get(OBJECTS)).json().objects as { id: string }[];
      const rest = (await get(`${OBJECTS}?offset=2`)).json().objects as { id: string }[];
      assert.deepEqual(
        rest.map((o) => o.id),
        all.slice(2).map((o) => o.id),
      );
      assert.equal((await get(`${OBJECTS}?offset=0`)).json().objects.length, 5);
      assertTaxiiError(await get(`${OBJECTS}?offset=-1`), 400, 'invalid_parameter');
    });

    it('serves one object by STIX id or by bare IP (v4 and v6, encoded or not)', async () => {
      const byIp = await get(`${OBJECTS}${seededIp(2)}/`);
      assert.equal(byIp.statusCode, 200);
      const [indicator] = byIp.json().objects;
      assert.equal(indicator.pattern, `[ipv4-addr:value = '${seededIp(2)}']`);
      const byId = await get(`${OBJECTS}${indicator.id}/`);
      assert.deepEqual(byId.json().objects, [indicator]);
      const upper = await get(`${OBJECTS}${indicator.id.toUpperCase().replace('INDICATOR', 'indicator')}/`);
      assert.deepEqual(upper.json().objects, [indicator]);
      for (const ip of ['2001:db9::1', encodeURIComponent('2001:db9::1'), '2001:DB9:0::1']) {
        const v6 = await get(`${OBJECTS}${ip}/`);
        assert.equal(v6.statusCode, 200, ip);
        assert.equal(v6.json().objects[0].pattern, "[ipv6-addr:value = '2001:db9::1']");
      }
      assertTaxiiError(await get(`${OBJECTS}45.200.200.200/`), 404, 'not_found');
      assertTaxiiError(
        await get(`${OBJECTS}indicator--00000000-0000-4000-8000-000000000000/`),
        404,
        'not_found',
      );
      assertTaxiiError(await get(`${OBJECTS}not-an-id/`), 404, 'not_found');
      assertTaxiiError(await get(`${OBJECTS}%25zz/`), 404, 'not_found');
    });

    it('serves the manifest with date_added, version and media type', async () => {
      const response = await get('/taxii2/collections/threat-intel/manifest/?match[type]=indicator');
      assert.equal(response.statusCode, 200);
      const records = response.json().objects;
      assert.equal(records.length, 3);
      for (const record of records) {
        assert.match(record.id, /^indicator--/);
        assert.match(record.date_added, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
        assert.match(record.version, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
        assert.equal(record.media_type, 'application/stix+json;version=2.1');
      }
      assert.equal(response.headers['x-taxii-date-added-first'], records[0].date_added);
      assert.equal(response.headers['x-taxii-date-added-last'], records[2].date_added);
    });
  });
}
