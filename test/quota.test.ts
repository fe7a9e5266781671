// Quotas on every engine (SPEC §2.3): exact under concurrency, headers, 429 + Retry-After, UTC rollover, overrides.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BACKENDS, backendSkipReason } from './helpers/engines.js';
import { bearer, createTestApp, type TestApp } from './helpers/test-app.js';

for (const backend of BACKENDS) {
  describe(`quotas (${backend.name})`, { skip: backendSkipReason(backend) }, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend.engine, {}, { quota: backend.quota });
    });
    after(async () => t?.close());

    const check = (key: string, ip = '45.83.20.1') =>
      t.app.inject({ method: 'GET', url: `/v1/key/check/${ip}`, headers: bearer(key) });

    it('gives exactly K successes to N > K parallel lookups', async () => {
      const key = await t.key('free', { quotaOverrides: { lookups: 25 } });
      const responses = await Promise.all(Array.from({ length: 60 }, () => check(key)));
      const ok = responses.filter((r) => r.statusCode === 200);
      const limited = responses.filter((r) => r.statusCode === 429);
      assert.equal(ok.length, 25);
      assert.equal(limited.length, 35);
      for (const res of limited) {
        assert.equal(res.json().code, 'quota_exceeded');
        assert.ok(Number(res.headers['retry-after']) > 0);
        assert.equal(res.headers['x-daily-remaining'], '0');
      }
    });

    it('gives exactly K successes to N > K parallel reports', async () => {
      const key = await t.key('free', { quotaOverrides: { reports: 10 } });
      const responses = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          t.app.inject({
            method: 'POST',
            url: '/v1/key/report',
            headers: bearer(key),
            payload: { ip: `45.83.21.${i + 1}`, category: 'port_scan' },
          }),
        ),
      );
      assert.equal(responses.filter((r) => r.statusCode === 200).length, 10);
      assert.equal(responses.filter((r) => r.statusCode === 429).length, 20);
      const stored = await t.store.db
        .selectFrom('reports')
        .select('ip')
        .where('key_id', '=', await t.services.keys.authenticate(key).then((r) => (r.ok ? r.key.id : '')))
        .execute();
      assert.equal(stored.length, 10);
    });

    it('sends every quota header with the right numbers', async () => {
      const key = await t.key('free');
      const res = await check(key);
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers['x-daily-limit'], '1000');
      assert.equal(res.headers['x-daily-used'], '1');
      assert.equal(res.headers['x-daily-remaining'], '999');
      assert.equal(res.headers['x-ratelimit-limit'], '1000');
      assert.equal(res.headers['x-ratelimit-remaining'], '999');
      const reset = Number(res.headers['x-ratelimit-reset']);
      assert.equal(reset % 86_400, 0);
      assert.ok(reset * 1000 > t.clock.now() && reset * 1000 - t.clock.now() <= 86_400_000);
      const rep = await t.app.inject({
        method: 'POST',
        url: '/v1/key/report',
        headers: bearer(key),
        payload: { ip: '45.83.22.1', category: 'spam' },
      });
      assert.equal(rep.headers['x-report-limit'], '1000');
      assert.equal(rep.headers['x-report-remaining'], '999');
      assert.equal(rep.headers['x-daily-used'], '1');
    });

    it('does not charge requests refused for their own fault', async () => {
      const key = await t.key('free', { quotaOverrides: { lookups: 3 } });
      assert.equal((await check(key, 'bogus')).statusCode, 400);
      assert.equal((await check(key, '010.0.0.1')).statusCode, 400);
      const status = (
        await t.app.inject({ method: 'GET', url: '/v1/key/status', headers: bearer(key) })
      ).json();
      assert.equal(status.quotas.lookups.used, 0);
      assert.equal(status.quotas.lookups.limit, 3);
      assert.equal(status.quotas.lookups.remaining, 3);
      assert.equal(status.tier.id, 'free');
      assert.equal(status.tier.name, 'Free');
      assert.equal(status.alerts.rangeAlerts.limit, 1);
      assert.equal(status.alerts.ipAlerts.limit, 5);
    });

    it('rolls the day over at 00:00 UTC', async () => {
      const key = await t.key('free', { quotaOverrides: { lookups: 2 } });
      const midnight = Date.UTC(2026, 5, 2);
      t.clock.set(midnight - 10_000);
      assert.equal((await check(key)).statusCode, 200);
      assert.equal((await check(key)).statusCode, 200);
      const limited = await check(key);
      assert.equal(limited.statusCode, 429);
      assert.equal(limited.headers['retry-after'], '10');
      t.clock.set(midnight - 1);
      assert.equal((await check(key)).statusCode, 429);
      t.clock.set(midnight);
      const fresh = await check(key);
      assert.equal(fresh.statusCode, 200);
      assert.equal(fresh.headers['x-daily-used'], '1');
    });

    it('keeps counters independent and lets unlimited keys through', async () => {
      const key = await t.key('free', { quotaOverrides: { lookups: 1 } });
      assert.equal((await check(key)).statusCode, 200);
      assert.equal((await check(key)).statusCode, 429);
      const rep = await t.app.inject({
        method: 'POST',
        url: '/v1/key/report',
        headers: bearer(key),
        payload: { ip: '45.83.23.1', category: 'spam' },
      });
      assert.equal(rep.statusCode, 200);
      const operator = await t.key('unlimited');
      for (let i = 0; i < 5; i++) assert.equal((await check(operator)).statusCode, 200);
      const res = await check(operator);
      assert.equal(res.headers['x-daily-used'], '6');
      assert.equal(res.headers['x-daily-limit'], undefined);
    });

    it('applies tier limits from configuration', async () => {
      const other = await createTestApp(
        backend.engine,
        { VAKT_TIER_LIMITS: 'free.lookups=2' },
        { quota: backend.quota },
      );
      try {
        const key = await other.key('free');
        const go = () =>
          other.app.inject({ method: 'GET', url: '/v1/key/check/45.83.20.1', headers: bearer(key) });
        assert.equal((await go()).statusCode, 200);
        assert.equal((await go()).statusCode, 200);
        assert.equal((await go()).statusCode, 429);
      } finally {
        await other.close();
      }
    });
  });
}
