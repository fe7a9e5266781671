// [slow, ~10 s] Dependency outages under a load of reports: 503 fast while down, recovery without a restart, no 200 lost.
// PostgreSQL or Redis is cut off for this app alone by a TCP proxy in front of it (TcpProxy), so the test
// runs beside other test files that share the same servers; to the app it looks exactly like the server
// restarting: open connections die, new ones are refused, then it answers again.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RedisQuotaCounter } from '../src/quota/redis-quota-counter.js';
import { Store } from '../src/store/store.js';
import { backendSkipReason, createTestDatabase, REDIS_TEST_URL, skipReason } from './helpers/engines.js';
import { TcpProxy } from './helpers/processes.js';
import { bearer, createTestApp, type TestApp } from './helpers/test-app.js';

interface Outcome {
  ip: string;
  status: number;
  code: string | undefined;
  ms: number;
  at: number;
}

/**
 * Sends reports (each for a new IP) from 6 loops until the service has recovered; the proxy goes down
 * once 10 reports succeeded and comes back 2 s later.
 */
async function loadThroughOutage(t: TestApp, key: string, proxy: TcpProxy) {
  const outcomes: Outcome[] = [];
  const start = Date.now();
  let seq = 0;
  let downAt = 0;
  let upAt = 0;
  const timeline = (async () => {
    // Cut the dependency once the load is flowing (a loaded CI machine may take a while to get there).
    while (outcomes.filter((o) => o.status === 200).length < 10 && Date.now() - start < 10_000) {
      await new Promise((done) => setTimeout(done, 50));
    }
    downAt = Date.now();
    await proxy.down();
    await new Promise((done) => setTimeout(done, 2000));
    await proxy.up();
    upAt = Date.now();
  })();
  const recovered = () => {
    if (upAt === 0) return false;
    const after = outcomes.filter((o) => o.at > upAt + 1500);
    return after.length >= 20 && after.slice(-20).every((o) => o.status === 200);
  };
  const loop = async () => {
    while (!recovered() && Date.now() - start < 30_000) {
      const n = seq++;
      const ip = `45.3.${Math.floor(n / 250)}.${(n % 250) + 1}`;
      const sent = Date.now();
      const res = await t.app.inject({
        method: 'POST',
        url: '/v1/key/report',
        headers: bearer(key),
        payload: { ip, category: 'brute_force' },
      });
      const body = res.json() as { code?: string };
      outcomes.push({ ip, status: res.statusCode, code: body.code, ms: Date.now() - sent, at: Date.now() });
      if (res.statusCode !== 200) await new Promise((done) => setTimeout(done, 20));
    }
  };
  await Promise.all([timeline, ...Array.from({ length: 6 }, loop)]);
  return { outcomes, downAt, upAt };
}

function assertOutageBehaviour(result: Awaited<ReturnType<typeof loadThroughOutage>>) {
  const { outcomes, downAt, upAt } = result;
  const unexpected = outcomes.filter((o) => o.status !== 200 && o.status !== 503);
  assert.deepEqual(unexpected, [], 'only 200 or 503');
  const failed = outcomes.filter((o) => o.status === 503);
  assert.ok(failed.length > 0, 'requests failed while the dependency was down');
  assert.ok(
    failed.every((o) => o.code === 'service_unavailable'),
    'a 503 carries the service_unavailable code',
  );
  // Fail fast: bounded by the connect/command timeouts (3 s / 2 s), never a hang.
  const slowest = Math.max(...failed.map((o) => o.ms));
  assert.ok(slowest < 5000, `slowest 503 took ${slowest} ms`);
  assert.ok(
    outcomes.some((o) => o.status === 200 && o.at < downAt),
    'reports succeeded before the outage',
  );
  assert.ok(
    outcomes.some((o) => o.status === 200 && o.at > upAt),
    'reports succeed again without a restart',
  );
}

describe('PostgreSQL outage during a report load [slow]', { skip: skipReason('postgres') }, () => {
  it('answers 503 fast while down, recovers by itself, and keeps every report that got a 200', async () => {
    const database = await createTestDatabase('postgres');
    const proxy = new TcpProxy(Number(new URL(database.url).port || 5432));
    await proxy.up();
    const proxied = new URL(database.url);
    proxied.port = String(proxy.port);
    const t = await createTestApp('postgres', { VAKT_DATABASE_URL: proxied.toString() }, { database });
    const direct = await Store.open(database.url, { migrate: false, poolSize: 2 });
    try {
      const key = await t.key('unlimited');
      const result = await loadThroughOutage(t, key, proxy);
      assertOutageBehaviour(result);
      const ok = new Set(result.outcomes.filter((o) => o.status === 200).map((o) => o.ip));
      const stored = new Set((await direct.db.selectFrom('reports').select('ip').execute()).map((r) => r.ip));
      for (const ip of ok) assert.ok(stored.has(ip), `report for ${ip} got a 200 and is stored`);
      // A 503 may still have committed (the commit's answer lost with the connection), never the reverse.
      assert.ok(stored.size >= ok.size);
    } finally {
      await t.close();
      await direct.close();
      await proxy.down();
      await database.drop();
    }
  });
});

describe('Redis outage during a report load [slow]', {
  skip: backendSkipReason({ name: 'postgres+redis', engine: 'postgres', quota: 'redis' }),
}, () => {
  it('fails closed with 503, recovers by itself, and stores exactly the reports that got a 200', async () => {
    const target = new URL(REDIS_TEST_URL);
    const proxy = new TcpProxy(Number(target.port || 6379), target.hostname);
    await proxy.up();
    const proxied = new URL(REDIS_TEST_URL);
    proxied.port = String(proxy.port);
    const t = await createTestApp('postgres', {}, { quota: 'redis', redisUrl: proxied.toString() });
    try {
      const key = await t.key('unlimited');
      const result = await loadThroughOutage(t, key, proxy);
      assertOutageBehaviour(result);
      const ok = new Set(result.outcomes.filter((o) => o.status === 200).map((o) => o.ip));
      const stored = new Set(
        (await t.store.db.selectFrom('reports').select('ip').execute()).map((r) => r.ip),
      );
      // The database never failed: a request refused for want of Redis left nothing behind.
      assert.deepEqual([...stored].sort(), [...ok].sort());
      const auth = await t.services.keys.authenticate(key);
      assert.ok(auth.ok);
      const used = await t.services.quota.usage(auth.key.id, t.clock.now());
      // Counted at least once per accepted report; a charge whose answer was cut off may over-count.
      assert.ok(used.reports >= ok.size, `used ${used.reports} for ${ok.size} accepted`);
      assert.ok(t.services.quota instanceof RedisQuotaCounter);
    } finally {
      await t.close();
      await proxy.down();
    }
  });
});
