// Usage counters on every backend (SPEC §2.3): store on SQLite and PostgreSQL, and Redis; exact under concurrency.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../src/config/config.js';
import { UnavailableError } from '../src/core/errors.js';
import { DAY_MS } from '../src/core/time.js';
import { buildApp } from '../src/http/build-app.js';
import type { QuotaCounter } from '../src/quota/quota-counter.js';
import { RedisQuotaCounter } from '../src/quota/redis-quota-counter.js';
import { StoreQuotaCounter } from '../src/quota/store-quota-counter.js';
import { createServices } from '../src/services/services.js';
import { Store } from '../src/store/store.js';
import {
  BACKENDS,
  backendSkipReason,
  createTestDatabase,
  REDIS_TEST_URL,
  type TestDatabase,
} from './helpers/engines.js';
import { FakeClock } from './helpers/fake-clock.js';
import { bearer, createTestApp, createTestRedisCounter, deleteRedisKeys } from './helpers/test-app.js';

const NOW = Date.UTC(2026, 2, 15, 12, 0, 0);

for (const backend of BACKENDS) {
  describe(`usage counters on ${backend.name}`, { skip: backendSkipReason(backend) }, () => {
    let database: TestDatabase;
    let store: Store;
    let counter: QuotaCounter;
    let keySeq = 0;
    const nextKey = () => `key_${backend.name}_${++keySeq}`;

    before(async () => {
      database = await createTestDatabase(backend.engine);
      store = await Store.open(database.url, { poolSize: 12 });
      if (backend.quota === 'redis') {
        const redis = createTestRedisCounter();
        await redis.ready();
        counter = redis;
      } else {
        counter = new StoreQuotaCounter(store);
      }
    });
    after(async () => {
      if (counter instanceof RedisQuotaCounter) await deleteRedisKeys(counter.prefix);
      await counter?.close();
      await store?.close();
      await database?.drop();
    });

    const consume = (keyId: string, units: number, limit: number | null, partial = false, now = NOW) =>
      counter.consume({ keyId, counter: 'lookups', units, limit, now, partial });

    it('charges all units or none when not partial', async () => {
      const key = nextKey();
      assert.deepEqual(await consume(key, 3, 5), { granted: 3, used: 3, limit: 5 });
      assert.deepEqual(await consume(key, 3, 5), { granted: 0, used: 3, limit: 5 });
      assert.deepEqual(await consume(key, 2, 5), { granted: 2, used: 5, limit: 5 });
      assert.deepEqual(await consume(key, 1, 5), { granted: 0, used: 5, limit: 5 });
    });

    it('grants what is left in partial mode', async () => {
      const key = nextKey();
      await consume(key, 3, 5);
      assert.deepEqual(await consume(key, 4, 5, true), { granted: 2, used: 5, limit: 5 });
      assert.deepEqual(await consume(key, 4, 5, true), { granted: 0, used: 5, limit: 5 });
    });

    it('counts without a limit and reads usage per counter', async () => {
      const key = nextKey();
      await consume(key, 7, null);
      await counter.consume({
        keyId: key,
        counter: 'reports',
        units: 2,
        limit: 10,
        now: NOW,
        partial: false,
      });
      const usage = await counter.usage(key, NOW);
      assert.equal(usage.lookups, 7);
      assert.equal(usage.reports, 2);
      assert.equal(usage.blacklist, 0);
      assert.equal(usage.taxii, 0);
    });

    it('starts from zero on the next UTC day', async () => {
      const key = nextKey();
      await consume(key, 5, 5);
      assert.equal((await consume(key, 1, 5)).granted, 0);
      const tomorrow = Date.UTC(2026, 2, 16, 0, 0, 0);
      assert.deepEqual(await consume(key, 1, 5, false, tomorrow), { granted: 1, used: 1, limit: 5 });
    });

    it('refunds never below zero', async () => {
      const key = nextKey();
      await consume(key, 3, 10);
      await counter.refund(key, 'lookups', 2, NOW);
      assert.equal((await counter.usage(key, NOW)).lookups, 1);
      await counter.refund(key, 'lookups', 5, NOW);
      assert.equal((await counter.usage(key, NOW)).lookups, 0);
    });

    it('with K units left, N > K parallel charges give exactly K successes', async () => {
      const key = nextKey();
      await consume(key, 10, 30);
      const results = await Promise.all(Array.from({ length: 60 }, () => consume(key, 1, 30)));
      assert.equal(results.filter((r) => r.granted === 1).length, 20);
      assert.equal((await counter.usage(key, NOW)).lookups, 30);
      const partial = await Promise.all(Array.from({ length: 10 }, () => consume(nextKey(), 4, 3, true)));
      assert.ok(partial.every((r) => r.granted === 3));
    });
  });
}

describe('Redis usage counters', { skip: backendSkipReason(BACKENDS[2] ?? BACKENDS[0]!) }, () => {
  it('expire after their UTC day', async () => {
    const counter = createTestRedisCounter();
    try {
      await counter.ready();
      await counter.consume({ keyId: 'k', counter: 'lookups', units: 1, limit: 5, now: NOW, partial: false });
      const { Redis } = await import('ioredis');
      const client = new Redis(REDIS_TEST_URL);
      const ttl = await client.pttl(`${counter.prefix}k:lookups:${Math.floor(NOW / DAY_MS)}`);
      client.disconnect();
      // 12 hours to midnight plus the one-hour grace.
      assert.ok(ttl > 12 * 3600_000 && ttl <= 13 * 3600_000, `ttl ${ttl}`);
    } finally {
      await deleteRedisKeys(counter.prefix);
      await counter.close();
    }
  });

  it('fails closed: an unreachable Redis throws UnavailableError at once and the route answers 503', async () => {
    // Port 1 on loopback refuses connections.
    const counter = new RedisQuotaCounter('redis://127.0.0.1:1/0');
    const database = await createTestDatabase('sqlite');
    const config = loadConfig({ VAKT_DATABASE_URL: database.url, VAKT_LOG_LEVEL: 'silent' });
    const store = await Store.open(config.databaseUrl);
    const services = createServices(config, store, counter, new FakeClock());
    const app = await buildApp(services);
    try {
      const started = Date.now();
      await assert.rejects(
        counter.consume({ keyId: 'k', counter: 'lookups', units: 1, limit: 5, now: NOW, partial: false }),
        UnavailableError,
      );
      assert.ok(Date.now() - started < 1000);
      const { key } = await services.keys.create({ tier: 'free' });
      const check = await app.inject({ url: '/v1/key/check/45.83.12.7', headers: bearer(key) });
      assert.equal(check.statusCode, 503);
      assert.equal(check.json().code, 'service_unavailable');
      const report = await app.inject({
        method: 'POST',
        url: '/v1/key/report',
        headers: bearer(key),
        payload: { ip: '45.83.12.7', category: 'brute_force' },
      });
      assert.equal(report.statusCode, 503);
      // Nothing half-done: the report's transaction rolled back.
      const rows = await store.db.selectFrom('reports').select('id').execute();
      assert.equal(rows.length, 0);
    } finally {
      await app.close();
      await counter.close();
      await store.close();
      await database.drop();
    }
  });
});

for (const backend of BACKENDS) {
  describe(`quota through the routes on ${backend.name}`, { skip: backendSkipReason(backend) }, () => {
    it('charges lookups until the limit, then 429 quota_exceeded', async () => {
      const t = await createTestApp(backend.engine, {}, { quota: backend.quota });
      try {
        const key = await t.key('free', { quotaOverrides: { lookups: 3 } });
        const statuses: number[] = [];
        for (let i = 0; i < 5; i++) {
          const res = await t.app.inject({ url: '/v1/key/check/45.83.12.7', headers: bearer(key) });
          statuses.push(res.statusCode);
          if (res.statusCode === 429) assert.equal(res.json().code, 'quota_exceeded');
        }
        assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
        const report = await t.app.inject({
          method: 'POST',
          url: '/v1/key/report',
          headers: bearer(key),
          payload: { ip: '45.83.12.7', category: 'brute_force' },
        });
        assert.equal(report.statusCode, 200);
        assert.equal(report.headers['x-daily-used'], '1');
      } finally {
        await t.close();
      }
    });
  });
}
