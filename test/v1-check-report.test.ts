// Check and report routes on every engine: SPEC §3.1, §3.3, §2.2, §2.4 and cases 001–004, 009, 010.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BACKENDS, backendSkipReason } from './helpers/engines.js';
import { bearer, createTestApp, type TestApp } from './helpers/test-app.js';

for (const backend of BACKENDS) {
  describe(`check and report (${backend.name})`, { skip: backendSkipReason(backend) }, () => {
    let t: TestApp;
    let key: string;

    before(async () => {
      t = await createTestApp(backend.engine, {}, { quota: backend.quota });
      key = await t.key('tier_1');
    });
    after(async () => t?.close());

    const report = (body: Record<string, unknown> | string, withKey = key, contentType?: string) =>
      t.app.inject({
        method: 'POST',
        url: '/v1/key/report',
        headers: { ...bearer(withKey), ...(contentType ? { 'content-type': contentType } : {}) },
        payload: body,
      });
    const check = (ip: string, query = '', withKey = key) =>
      t.app.inject({ method: 'GET', url: `/v1/key/check/${ip}${query}`, headers: bearer(withKey) });
    const status = async (withKey = key) =>
      (await t.app.inject({ method: 'GET', url: '/v1/key/status', headers: bearer(withKey) })).json();

    it('shows a report in the next check, with the score explained by its breakdown', async () => {
      const res = await report({ ip: '45.83.12.1', category: 'brute_force', protocol: 'ssh', comment: 'x' });
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json();
      assert.equal(body.success, true);
      assert.ok(body.confidenceLevel > 0);
      const checked = (await check('45.83.12.1')).json();
      assert.equal(checked.found, true);
      assert.equal(checked.contributor.reportCount, 1);
      assert.equal(checked.contributor.distinctReporters, 1);
      assert.equal(checked.confidenceLevel, body.confidenceLevel);
      assert.ok(checked.scoreBreakdown.contributor > 0);
      assert.equal(checked.scoreBreakdown.saturated, checked.confidenceLevel);
      assert.deepEqual(checked.contributor.categories, [{ category: 'brute_force', id: 1, count: 1 }]);
      assert.equal(checked.contributor.reports[0].protocol, 'ssh');
      assert.equal(checked.threatLevel, 'low');
    });

    it('merges a repeat report within 15 minutes without charging (case 001)', async () => {
      const before = (await status()).quotas.reports.used;
      const first = await report({ ip: '45.83.12.7', category: 'brute_force', protocol: 'ssh' });
      assert.equal(first.statusCode, 200);
      t.clock.advance(40_000);
      const second = await report({ ip: '45.83.12.7', category: 'brute_force', protocol: 'ssh' });
      assert.equal(second.statusCode, 200);
      assert.equal(second.json().duplicate, true);
      assert.equal(first.json().duplicate, undefined);
      assert.equal(second.json().confidenceLevel, first.json().confidenceLevel);
      assert.equal((await status()).quotas.reports.used, before + 1);
      const checked = (await check('45.83.12.7')).json();
      assert.equal(checked.contributor.reportCount, 1);
      assert.equal(checked.confidenceLevel, first.json().confidenceLevel);
      // After the window the same report counts again.
      t.clock.advance(15 * 60_000);
      const third = await report({ ip: '45.83.12.7', category: 'brute_force', protocol: 'ssh' });
      assert.equal(third.json().duplicate, undefined);
      assert.equal((await check('45.83.12.7')).json().contributor.reportCount, 2);
    });

    it('refuses non-public addresses without storing or charging (case 002)', async () => {
      const before = (await status()).quotas.reports.used;
      for (const ip of [
        '172.18.0.1',
        '10.0.0.5',
        '127.0.0.1',
        '100.64.0.1',
        '169.254.1.1',
        '192.0.2.10',
        '::1',
        'fe80::1',
        'fc00::1',
        '::ffff:10.1.2.3',
      ]) {
        const res = await report({ ip, category: 'brute_force' });
        assert.equal(res.statusCode, 400, ip);
        assert.equal(res.json().code, 'ip_not_public', ip);
      }
      assert.equal((await status()).quotas.reports.used, before);
      const checked = await check('10.0.0.5');
      assert.equal(checked.statusCode, 200);
      assert.equal(checked.json().found, false);
      assert.equal(checked.json().isPublic, false);
    });

    it('keys IPv4-mapped IPv6 as IPv4 (case 003)', async () => {
      assert.equal((await report({ ip: '::ffff:45.83.12.9', category: 'port_scan' })).statusCode, 200);
      for (const form of ['45.83.12.9', '::ffff:45.83.12.9', encodeURIComponent('::ffff:45.83.12.9')]) {
        const body = (await check(form)).json();
        assert.equal(body.ip, '45.83.12.9');
        assert.equal(body.contributor.reportCount, 1);
      }
    });

    it('merges IPv6 spellings into one record and refuses leading zeros (case 004)', async () => {
      assert.equal((await report({ ip: '2a05:d014:ff:212::3:1', category: 'brute_force' })).statusCode, 200);
      assert.equal(
        (await report({ ip: '2A05:D014:00FF:0212:0000:0000:0003:0001', category: 'port_scan' })).statusCode,
        200,
      );
      const body = (await check('2a05%3Ad014%3Aff%3A212%3A%3A3%3A1')).json();
      assert.equal(body.ip, '2a05:d014:ff:212::3:1');
      assert.equal(body.ipVersion, 6);
      assert.equal(body.contributor.reportCount, 2);
      const leading = await report({ ip: '010.1.2.3', category: 'brute_force' });
      assert.equal(leading.statusCode, 400);
      assert.equal(leading.json().code, 'invalid_ip');
      const checkLeading = await check('010.1.2.3');
      assert.equal(checkLeading.statusCode, 400);
      assert.equal(checkLeading.json().code, 'invalid_ip');
    });

    it('reads report timestamps in any zone and refuses bad ones by name (case 009)', async () => {
      const accepted: [string, string][] = [
        ['2025-04-22T10:00:00Z', '2025-04-22T10:00:00Z'],
        ['2025-04-22T10:00:00+02:00', '2025-04-22T08:00:00Z'],
        ['2025-04-22 10:00:00', '2025-04-22T10:00:00Z'],
      ];
      for (const [i, [timestamp, stored]] of accepted.entries()) {
        const ip = `45.83.13.${i + 1}`;
        const res = await report({ ip, category: 'brute_force', timestamp });
        assert.equal(res.statusCode, 200, `${timestamp}: ${res.body}`);
        const body = (await check(ip)).json();
        assert.equal(body.contributor.reports[0].reportedAt, stored);
        assert.equal(body.firstSeen, stored);
      }
      const future = await report({
        ip: '45.83.13.9',
        category: 'brute_force',
        timestamp: '2099-01-01T00:00:00Z',
      });
      assert.equal(future.statusCode, 400);
      assert.equal(future.json().code, 'invalid_parameter');
      assert.match(future.json().error, /timestamp/);
      for (const timestamp of ['1745316000', 'yesterday']) {
        const res = await report({ ip: '45.83.13.9', category: 'brute_force', timestamp });
        assert.equal(res.statusCode, 400, timestamp);
        assert.equal(res.json().code, 'invalid_parameter');
        assert.match(res.json().error, /timestamp/);
        assert.match(res.json().error, /ISO-8601/);
      }
      // A JSON number is refused the same way.
      const numeric = await report({ ip: '45.83.13.9', category: 'brute_force', timestamp: 1745316000 });
      assert.equal(numeric.statusCode, 400);
      assert.match(numeric.json().error, /timestamp/);
      assert.equal((await check('45.83.13.9')).json().found, false);
    });

    it('names the parameter and value of an unsubstituted Fail2Ban category (case 010)', async () => {
      const before = (await status()).quotas.reports.used;
      const res = await report(
        'ip=45.83.12.30&category=<category>',
        key,
        'application/x-www-form-urlencoded',
      );
      assert.equal(res.statusCode, 400);
      assert.equal(res.json().code, 'invalid_parameter');
      assert.match(res.json().error, /category/);
      assert.match(res.json().error, /<category>/);
      assert.equal((await status()).quotas.reports.used, before);
      assert.equal((await check('45.83.12.30')).json().found, false);
    });

    it('accepts form bodies, category ids and comma lists', async () => {
      const res = await report(
        'ip=45.83.14.1&categories=4,5&protocol=HTTP&comment=a%2Cb',
        key,
        'application/x-www-form-urlencoded',
      );
      assert.equal(res.statusCode, 200, res.body);
      const body = (await check('45.83.14.1')).json();
      assert.deepEqual(body.contributor.categories.map((c: { category: string }) => c.category).sort(), [
        'sql_injection',
        'web_exploit',
      ]);
      assert.equal(body.contributor.reports[0].category, 'web_exploit');
      assert.equal(body.contributor.reports[0].protocol, 'http');
      assert.equal(body.contributor.reports[0].comment, 'a,b');
      assert.equal((await report({ ip: '45.83.14.2', category: 18 })).statusCode, 400);
      assert.equal((await report({ ip: '45.83.14.2', category: 2 })).statusCode, 200);
    });

    it('refuses bad bodies with the right code and stores nothing', async () => {
      const before = (await status()).quotas.reports.used;
      const cases: [string, unknown, string, number, string][] = [
        ['malformed JSON', '{"ip": "45.83.15.1", ', 'application/json', 400, 'invalid_parameter'],
        [
          'wrong type',
          { ip: '45.83.15.1', category: 'brute_force', comment: { a: 1 } },
          'application/json',
          400,
          'invalid_parameter',
        ],
        [
          'long comment',
          { ip: '45.83.15.1', category: 'brute_force', comment: 'x'.repeat(1001) },
          'application/json',
          400,
          'invalid_parameter',
        ],
        [
          'unknown category',
          { ip: '45.83.15.1', category: 'hacking' },
          'application/json',
          400,
          'invalid_parameter',
        ],
        ['missing category', { ip: '45.83.15.1' }, 'application/json', 400, 'invalid_parameter'],
        ['missing ip', { category: 'brute_force' }, 'application/json', 400, 'invalid_parameter'],
        ['bad ip', { ip: 'not-an-ip', category: 'brute_force' }, 'application/json', 400, 'invalid_ip'],
        [
          'bad protocol',
          { ip: '45.83.15.1', category: 'brute_force', protocol: 'x'.repeat(33) },
          'application/json',
          400,
          'invalid_parameter',
        ],
        [
          'oversized',
          { ip: '45.83.15.1', category: 'brute_force', comment: 'x'.repeat(70_000) },
          'application/json',
          413,
          'payload_too_large',
        ],
        ['xml', '<report/>', 'application/xml', 415, 'unsupported_media_type'],
      ];
      for (const [name, body, type, code, errorCode] of cases) {
        const res = await t.app.inject({
          method: 'POST',
          url: '/v1/key/report',
          headers: { ...bearer(key), 'content-type': type },
          payload: typeof body === 'string' ? body : JSON.stringify(body),
        });
        assert.equal(res.statusCode, code, `${name}: ${res.body}`);
        assert.equal(res.json().code, errorCode, name);
        assert.equal(typeof res.json().error, 'string', name);
        assert.doesNotMatch(res.body, /at .*\.ts:|SELECT|INSERT/i, name);
      }
      const exact = await report({ ip: '45.83.15.2', category: 'brute_force', comment: 'é'.repeat(1000) });
      assert.equal(exact.statusCode, 200);
      assert.equal((await check('45.83.15.1')).json().found, false);
      assert.equal((await status()).quotas.reports.used, before + 1);
    });

    it('refuses reports against allowlisted addresses', async () => {
      const other = await createTestApp(
        backend.engine,
        { VAKT_ALLOWLIST: '45.83.16.0/24, 2a05:d014:ff:300::/64' },
        { quota: backend.quota },
      );
      try {
        const k = await other.key('free');
        for (const ip of ['45.83.16.9', '2a05:d014:ff:300::1']) {
          const res = await other.app.inject({
            method: 'POST',
            url: '/v1/key/report',
            headers: bearer(k),
            payload: { ip, category: 'brute_force' },
          });
          assert.equal(res.statusCode, 400);
          assert.equal(res.json().code, 'ip_protected');
        }
      } finally {
        await other.close();
      }
    });

    it('authenticates keys: missing, malformed, unknown, disabled, expired, ?key= on GET', async () => {
      const missing = await t.app.inject({ method: 'GET', url: '/v1/key/check/45.83.12.1' });
      assert.equal(missing.statusCode, 401);
      assert.equal(missing.json().code, 'missing_api_key');
      const malformed = await check('45.83.12.1', '', 'not-a-key');
      assert.equal(malformed.statusCode, 401);
      assert.equal(malformed.json().code, 'invalid_api_key');
      const unknown = await check('45.83.12.1', '', `sk_free_${'A'.repeat(40)}`);
      assert.equal(unknown.statusCode, 401);
      assert.equal(unknown.json().code, 'invalid_api_key');
      const viaQuery = await t.app.inject({ method: 'GET', url: `/v1/key/check/45.83.12.1?key=${key}` });
      assert.equal(viaQuery.statusCode, 200);
      const postQuery = await t.app.inject({
        method: 'POST',
        url: `/v1/key/report?key=${key}`,
        payload: { ip: '45.83.12.1', category: 'spam' },
      });
      assert.equal(postQuery.statusCode, 401);

      const created = await t.services.keys.create({ tier: 'free' });
      await t.services.keys.disable(created.id);
      const disabled = await check('45.83.12.1', '', created.key);
      assert.equal(disabled.statusCode, 403);
      assert.equal(disabled.json().code, 'key_disabled');
      const expiring = await t.key('free', { expiresAt: t.clock.now() + 1000 });
      assert.equal((await check('45.83.12.1', '', expiring)).statusCode, 200);
      t.clock.advance(2000);
      const expired = await check('45.83.12.1', '', expiring);
      assert.equal(expired.statusCode, 403);
      assert.equal(expired.json().code, 'key_expired');

      const sensor = await t.key('sensor');
      assert.equal((await check('45.83.12.1', '', sensor)).statusCode, 403);

      const rotated = await t.services.keys.create({ tier: 'free' });
      const next = await t.services.keys.rotate(rotated.id);
      assert.ok(next);
      assert.equal((await check('45.83.12.1', '', rotated.key)).statusCode, 401);
      assert.equal((await check('45.83.12.1', '', next.key)).statusCode, 200);
    });

    it('honours verbose, exclude, maxAge and the unknown-IP shape', async () => {
      const unknown = (await check('45.83.99.99')).json();
      assert.equal(unknown.found, false);
      assert.equal(unknown.confidenceLevel, 0);
      assert.equal(unknown.isPublic, true);
      const start = t.clock.now();
      await report({
        ip: '45.83.17.1',
        category: 'spam',
        timestamp: new Date(start - 20 * 86_400_000).toISOString(),
      });
      await report({ ip: '45.83.17.1', category: 'phishing' });
      const all = (await check('45.83.17.1')).json();
      assert.equal(all.contributor.reportCount, 2);
      assert.equal(all.contributor.reports.length, 2);
      const recent = (await check('45.83.17.1', '?maxAge=7')).json();
      assert.equal(recent.contributor.reportCount, 1);
      assert.equal(recent.contributor.reports.length, 1);
      // Category counts follow maxAge too: the 20-day-old spam report is outside 7 days.
      assert.deepEqual(
        all.contributor.categories
          .map((c: { category: string; count: number }) => [c.category, c.count])
          .sort(),
        [
          ['phishing', 1],
          ['spam', 1],
        ],
      );
      assert.deepEqual(recent.contributor.categories, [{ category: 'phishing', id: 6, count: 1 }]);
      const terse = (await check('45.83.17.1', '?verbose=false&exclude=geolocation,scoreBreakdown')).json();
      assert.equal(terse.behaviors, undefined);
      assert.equal(terse.contributor.reports, undefined);
      assert.equal(terse.geolocation, undefined);
      assert.equal(terse.scoreBreakdown, undefined);
      assert.equal(terse.confidenceLevel, all.confidenceLevel);
      const bad = await check('45.83.17.1', '?maxAge=0');
      assert.equal(bad.statusCode, 400);
      assert.equal(bad.json().code, 'invalid_parameter');
      assert.equal((await check('45.83.17.1', '?maxAge=abc')).statusCode, 400);
    });

    it('caps the report list at the newest 20 and redacts e-mail addresses', async () => {
      const reporters = await Promise.all(Array.from({ length: 3 }, () => t.key('tier_1')));
      for (let i = 0; i < 25; i++) {
        const res = await report(
          { ip: '45.83.18.1', category: (i % 16) + 1, comment: `seen by admin${i}@example.org` },
          reporters[i % 3],
        );
        assert.equal(res.statusCode, 200);
        t.clock.advance(1000);
      }
      const body = (await check('45.83.18.1')).json();
      assert.equal(body.contributor.reportCount, 25);
      assert.equal(body.contributor.reports.length, 20);
      assert.equal(body.contributor.distinctReporters, 3);
      assert.ok(body.contributor.reports.every((r: { comment: string }) => !r.comment.includes('@')));
    });

    it('answers 404 and 405-style misses in the error shape', async () => {
      const res = await t.app.inject({ method: 'GET', url: '/v1/key/nothing-here', headers: bearer(key) });
      assert.equal(res.statusCode, 404);
      assert.equal(res.json().code, 'not_found');
      const health = await t.app.inject({ method: 'GET', url: '/healthz' });
      assert.equal(health.statusCode, 200);
    });
  });
}
