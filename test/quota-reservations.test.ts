// Per-process quota reservations (decision 0006) over the store counter, on SQLite and PostgreSQL: never more
// than the limit across processes, exact near the limit, unused units returned, per-process headers and usage.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseIp } from '../src/core/ip.js';
import { DAY_MS } from '../src/core/time.js';
import type { QuotaCounter } from '../src/quota/quota-counter.js';
import { ReservingQuotaCounter } from '../src/quota/reserving-quota-counter.js';
import { StoreQuotaCounter } from '../src/quota/store-quota-counter.js';
import { Store } from '../src/store/store.js';
import { createTestDatabase, ENGINES, skipReason, type TestDatabase } from './helpers/engines.js';
import { bearer, createTestApp } from './helpers/test-app.js';

const NOW = Date.UTC(2026, 5, 10, 9, 30, 0);

for (const engine of ENGINES) {
  describe(`quota reservations on ${engine}`, { skip: skipReason(engine) }, () => {
    let database: TestDatabase;
    // Two stores on one database stand for two server processes.
    let storeA: Store;
    let storeB: Store;
    const counters: ReservingQuotaCounter[] = [];
    let seq = 0;
    const nextKey = () => `key_res_${engine}_${++seq}`;

    const reserving = (
      store: Store,
      options: ConstructorParameters<typeof ReservingQuotaCounter>[1] = {},
    ) => {
      const counter = new ReservingQuotaCounter(new StoreQuotaCounter(store), options);
      counters.push(counter);
      return counter;
    };
    const shared = new Map<Store, StoreQuotaCounter>();
    const sharedCount = async (store: Store, keyId: string, now = NOW) => {
      let plain = shared.get(store);
      if (!plain) {
        plain = new StoreQuotaCounter(store);
        shared.set(store, plain);
      }
      return (await plain.usage(keyId, now)).lookups;
    };
    const one = (counter: ReservingQuotaCounter, keyId: string, limit: number | null, now = NOW) =>
      counter.consume({ keyId, counter: 'lookups', units: 1, limit, now, partial: false });

    before(async () => {
      database = await createTestDatabase(engine);
      storeA = await Store.open(database.url, { poolSize: 8 });
      storeB = await Store.open(database.url, { poolSize: 8 });
    });
    after(async () => {
      for (const counter of counters) await counter.close().catch(() => {});
      await storeA?.close();
      await storeB?.close();
      await database?.drop();
    });

    it('serves most charges from a reserved block and reports exact per-process usage', async () => {
      const counter = reserving(storeA, { idleReturnMs: 60_000 });
      const key = nextKey();
      for (let i = 1; i <= 100; i++) {
        const outcome = await one(counter, key, null);
        assert.deepEqual(outcome, { granted: 1, used: i, limit: null });
      }
      // The shared count is ahead by at most one block; usage() shows this process's exact view.
      const stored = await sharedCount(storeA, key);
      assert.ok(stored >= 100 && stored <= 100 + 64, `stored ${stored}`);
      assert.equal((await counter.usage(key, NOW)).lookups, 100);
      await counter.flush();
      assert.equal(await sharedCount(storeA, key), 100, 'flush returns every unused unit');
    });

    it("reports exact usage while a block's reservation is in flight", async () => {
      // The store commits the top-up at once but its answer reaches this process only when the gate opens,
      // as over a slow network: a usage read meanwhile must not count the block as used.
      let open: () => void = () => {};
      let gate: Promise<void> | null = null;
      const plain = new StoreQuotaCounter(storeA);
      const slow: QuotaCounter = {
        transactional: plain.transactional,
        consume: async (request, tx) => {
          const outcome = await plain.consume(request, tx);
          if (gate !== null) await gate;
          return outcome;
        },
        refund: (...args) => plain.refund(...args),
        usage: (...args) => plain.usage(...args),
        close: () => plain.close(),
      };
      const counter = new ReservingQuotaCounter(slow, { idleReturnMs: 60_000 });
      counters.push(counter);
      const key = nextKey();
      await one(counter, key, null); // exact
      await one(counter, key, null); // a block of 64: 63 left
      gate = new Promise<void>((resolve) => (open = resolve));
      for (let i = 3; i <= 49; i++) await one(counter, key, null); // the 49th leaves 16: top-up of 48 starts
      const deadline = Date.now() + 3_000;
      while ((await sharedCount(storeA, key)) !== 65 + 48 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.equal(await sharedCount(storeA, key), 113, 'the store counted the top-up');
      const usage = counter.usage(key, NOW);
      setTimeout(open, 50);
      assert.equal((await usage).lookups, 49);
      gate = null;
      await counter.flush();
      assert.equal(await sharedCount(storeA, key), 49);
    });

    it('returns unused units after being idle', async () => {
      const counter = reserving(storeA, { idleReturnMs: 40 });
      const key = nextKey();
      for (let i = 0; i < 10; i++) await one(counter, key, null);
      assert.ok((await sharedCount(storeA, key)) > 10, 'a block was reserved');
      const deadline = Date.now() + 3_000;
      while ((await sharedCount(storeA, key)) !== 10 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.equal(await sharedCount(storeA, key), 10);
    });

    it('never grants more than the limit across two processes, under concurrency', async () => {
      const a = reserving(storeA, { idleReturnMs: 60_000 });
      const b = reserving(storeB, { idleReturnMs: 60_000 });
      const key = nextKey();
      const limit = 2_000;
      const attempts = 2_600;
      const results = await Promise.all(
        Array.from({ length: attempts }, (_, i) => one(i % 2 === 0 ? a : b, key, limit)),
      );
      const granted = results.filter((r) => r.granted === 1).length;
      assert.ok(granted <= limit, `granted ${granted} of ${limit}`);
      assert.ok((await sharedCount(storeA, key)) <= limit);
      // Everything not handed out comes back; afterwards the rest of the quota is still usable, exactly.
      await a.flush();
      await b.flush();
      assert.equal(await sharedCount(storeA, key), granted);
      let more = 0;
      for (let i = 0; i < limit; i++) {
        if ((await one(i % 2 === 0 ? a : b, key, limit)).granted === 1) more += 1;
        else break;
      }
      assert.equal(granted + more, limit);
      assert.equal((await one(a, key, limit)).granted, 0);
      assert.equal((await one(b, key, limit)).granted, 0);
    });

    it('charges exactly, without reserving, when little is left', async () => {
      const counter = reserving(storeA, { idleReturnMs: 60_000 });
      const key = nextKey();
      const limit = 300; // below 512 left: a block would be < 8 units
      for (let i = 1; i <= 5; i++) {
        assert.deepEqual(await one(counter, key, limit), { granted: 1, used: i, limit });
        assert.equal(await sharedCount(storeA, key), i, 'nothing reserved ahead');
      }
    });

    it('with K left, N > K parallel requests in two processes give exactly K', async () => {
      const a = reserving(storeA, { idleReturnMs: 60_000 });
      const b = reserving(storeB, { idleReturnMs: 60_000 });
      const key = nextKey();
      const limit = 50_000;
      // Use most of the quota through a plain counter first: K = 37 left.
      const plain = new StoreQuotaCounter(storeA);
      await plain.consume({
        keyId: key,
        counter: 'lookups',
        units: limit - 37,
        limit,
        now: NOW,
        partial: false,
      });
      const results = await Promise.all(Array.from({ length: 90 }, (_, i) => one(i % 2 ? a : b, key, limit)));
      assert.equal(results.filter((r) => r.granted === 1).length, 37);
      assert.equal(await sharedCount(storeA, key), limit);
    });

    it('starts a new block on a new UTC day and a changed limit, returning the old one', async () => {
      const counter = reserving(storeA, { idleReturnMs: 60_000 });
      const key = nextKey();
      for (let i = 0; i < 3; i++) await one(counter, key, null);
      const tomorrow = NOW + DAY_MS;
      assert.deepEqual(await one(counter, key, null, tomorrow), { granted: 1, used: 1, limit: null });
      await counter.flush();
      assert.equal(await sharedCount(storeA, key, NOW), 3);
      assert.equal(await sharedCount(storeA, key, tomorrow), 1);
      // A lowered limit (new override) is never exceeded by units reserved under the old one.
      const key2 = nextKey();
      for (let i = 0; i < 3; i++) await one(counter, key2, 100_000);
      assert.ok((await sharedCount(storeA, key2)) > 3);
      assert.deepEqual(await one(counter, key2, 4), { granted: 1, used: 4, limit: 4 });
      assert.equal((await one(counter, key2, 4)).granted, 0);
      await counter.flush();
      assert.equal(await sharedCount(storeA, key2), 4);
    });

    it('tops a running-low block up in the background, so a steady stream never runs out', async () => {
      const counter = reserving(storeA, { idleReturnMs: 60_000 });
      const key = nextKey();
      const reserved = () =>
        counter.consumeReserved({
          keyId: key,
          counter: 'lookups',
          units: 1,
          limit: null,
          now: NOW,
          partial: false,
        });
      await one(counter, key, null); // exact: learns the shared count
      await one(counter, key, null); // reserves the first block
      for (let i = 3; i <= 1_000; i++) {
        assert.deepEqual(reserved(), { granted: 1, used: i, limit: null }, `charge ${i}`);
        // Now and then the store answers what is in flight, as between requests (a top-up starts at 16
        // left, so 8 charges between round trips never find the block empty).
        if (i % 8 === 0) await counter.settled();
        if (i % 100 === 0) {
          const stored = await sharedCount(storeA, key);
          assert.ok(
            stored >= i && stored <= i + 64,
            `at ${i}: stored ${stored}, never more than one block ahead`,
          );
        }
      }
      await counter.flush();
      assert.equal(await sharedCount(storeA, key), 1_000);
    });

    it('returns the units of a top-up that lands after its pool was replaced', async () => {
      const counter = reserving(storeA, { idleReturnMs: 60_000 });
      const key = nextKey();
      await one(counter, key, null);
      await one(counter, key, null); // a block of 64: 63 left
      for (let i = 0; i < 47; i++) {
        // the last of these leaves 16 and starts a top-up, not awaited here
        const outcome = counter.consumeReserved({
          keyId: key,
          counter: 'lookups',
          units: 1,
          limit: null,
          now: NOW,
          partial: false,
        });
        assert.equal(outcome?.granted, 1);
      }
      const tomorrow = NOW + DAY_MS;
      assert.deepEqual(await one(counter, key, null, tomorrow), { granted: 1, used: 1, limit: null });
      await counter.flush();
      assert.equal(await sharedCount(storeA, key, NOW), 49, 'only the units handed out stay counted');
      assert.equal(await sharedCount(storeA, key, tomorrow), 1);
    });

    it('passes multi-unit and partial charges straight through, counting them in the same view', async () => {
      const counter = reserving(storeA, { idleReturnMs: 60_000 });
      const key = nextKey();
      for (let i = 0; i < 3; i++) await one(counter, key, null);
      const bulk = await counter.consume({
        keyId: key,
        counter: 'lookups',
        units: 10,
        limit: null,
        now: NOW,
        partial: false,
      });
      assert.deepEqual(bulk, { granted: 10, used: 13, limit: null });
      assert.deepEqual(await one(counter, key, null), { granted: 1, used: 14, limit: null });
    });
  });
}

describe('check answered from reserved units and the cached answer', () => {
  it('counts every request exactly and sends the same bytes as the computed answer', async () => {
    const t = await createTestApp('sqlite');
    try {
      const key = await t.key('unlimited');
      const reporter = await t.key('tier_1');
      const report = await t.app.inject({
        method: 'POST',
        url: '/v1/key/report',
        headers: bearer(reporter),
        payload: { ip: '45.83.12.7', category: 'port_scan' },
      });
      assert.equal(report.statusCode, 200, report.body);
      const bodies = new Set<string>();
      for (let i = 1; i <= 40; i++) {
        const res = await t.app.inject({
          method: 'GET',
          url: '/v1/key/check/45.83.12.7',
          headers: bearer(key),
        });
        assert.equal(res.statusCode, 200);
        assert.equal(res.headers['x-daily-used'], String(i));
        assert.equal(res.headers['content-type'], 'application/json; charset=utf-8');
        assert.ok(res.headers['x-request-id']);
        bodies.add(res.body);
      }
      assert.equal(bodies.size, 1, 'one cached answer');
      const [body] = bodies;
      // The same answer computed without any cache (a maxAge variant is never cached), minus nothing.
      const parsed = parseIp('45.83.12.7');
      assert.ok(parsed.ok);
      const computed = await t.services.reputation.check(
        parsed.ip,
        { verbose: true, maxAgeDays: null, protocols: null, ignoreWhitelist: false },
        t.clock.now(),
      );
      assert.deepEqual(JSON.parse(body ?? ''), computed);
      const status = await t.app.inject({ method: 'GET', url: '/v1/key/status', headers: bearer(key) });
      assert.match(status.body, /"lookups"/);
      // New evidence through this process drops the cached answer at once.
      await t.app.inject({
        method: 'POST',
        url: '/v1/key/report',
        headers: bearer(reporter),
        payload: { ip: '45.83.12.7', category: 'brute_force', comment: 'second' },
      });
      const after = await t.app.inject({
        method: 'GET',
        url: '/v1/key/check/45.83.12.7',
        headers: bearer(key),
      });
      assert.equal(JSON.parse(after.body).contributor.reportCount, 2);
      assert.equal(after.headers['x-daily-used'], '41');
    } finally {
      await t.close();
    }
  });

  it('stops at the limit exactly for a key that was far from it', async () => {
    const t = await createTestApp('sqlite');
    try {
      const key = await t.key('free', { quotaOverrides: { lookups: 1_000 } });
      let ok = 0;
      let limited = 0;
      for (let i = 0; i < 1_010; i++) {
        const res = await t.app.inject({
          method: 'GET',
          url: '/v1/key/check/45.83.12.9',
          headers: bearer(key),
        });
        if (res.statusCode === 200) ok += 1;
        else if (res.statusCode === 429) limited += 1;
      }
      assert.equal(ok, 1_000);
      assert.equal(limited, 10);
    } finally {
      await t.close();
    }
  });
});
