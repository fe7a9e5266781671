// [slow, ~15 s] Real `vakt serve` processes: two instances on one PostgreSQL + Redis, and `--workers 2` on SQLite (SPEC §2.3, §13).
// Processes run from source through tsx (test/helpers/vakt-entry.ts), so no build step is needed.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { loadConfig } from '../src/config/config.js';
import { StoreQuotaCounter } from '../src/quota/store-quota-counter.js';
import { createServices } from '../src/services/services.js';
import { Store } from '../src/store/store.js';
import { backendSkipReason, createTestDatabase, REDIS_TEST_URL } from './helpers/engines.js';
import { childPids, freePort, spawnVakt, type VaktProcess, waitHealthy } from './helpers/processes.js';

/** Creates a free-tier key with `lookups` per day directly in the database; returns id and secret. */
async function createKey(url: string, lookups: number) {
  const config = loadConfig({ VAKT_DATABASE_URL: url, VAKT_LOG_LEVEL: 'silent' });
  const store = await Store.open(url, { poolSize: 2 });
  try {
    const services = createServices(config, store, new StoreQuotaCounter(store), { now: () => Date.now() });
    return await services.keys.create({ tier: 'free', quotaOverrides: { lookups } });
  } finally {
    await store.close();
  }
}

/** Fires `total` check requests at once, spread round-robin over `ports`; returns the status counts. */
async function burst(ports: number[], key: string, total: number) {
  const statuses = await Promise.all(
    Array.from({ length: total }, async (_, i) => {
      const port = ports[i % ports.length];
      const res = await fetch(`http://127.0.0.1:${port}/v1/key/check/45.83.12.${(i % 200) + 1}`, {
        headers: { authorization: `Bearer ${key}` },
      });
      await res.arrayBuffer();
      return res.status;
    }),
  );
  const counts = new Map<number, number>();
  for (const status of statuses) counts.set(status, (counts.get(status) ?? 0) + 1);
  return counts;
}

describe('two vakt serve processes on one PostgreSQL + Redis [slow]', {
  skip: backendSkipReason({ name: 'postgres+redis', engine: 'postgres', quota: 'redis' }),
}, () => {
  it('with K lookups left, N > K parallel requests over both give exactly K successes', async () => {
    const database = await createTestDatabase('postgres');
    const processes: VaktProcess[] = [];
    const key = await createKey(database.url, 25);
    try {
      const ports = [await freePort(), await freePort()];
      for (const port of ports) {
        processes.push(
          spawnVakt(['serve'], {
            VAKT_DATABASE_URL: database.url,
            VAKT_REDIS_URL: REDIS_TEST_URL,
            VAKT_PORT: String(port),
            VAKT_LOG_LEVEL: 'silent',
          }),
        );
      }
      await Promise.all(ports.map((port, i) => waitHealthy(port, processes[i] as VaktProcess)));
      const counts = await burst(ports, key.key, 80);
      assert.equal(counts.get(200), 25);
      assert.equal(counts.get(429), 55);
      // Start-up partition upkeep and the retention job ran beside each other without error.
      const store = await Store.open(database.url, { migrate: false, poolSize: 1 });
      let marker: { value: string }[] = [];
      for (let i = 0; i < 100 && marker.length === 0; i++) {
        marker = await store.db
          .selectFrom('settings')
          .select('value')
          .where('name', '=', 'job:retention:last_run')
          .execute();
        if (marker.length === 0) await new Promise((done) => setTimeout(done, 100));
      }
      await store.close();
      assert.equal(marker.length, 1);
      for (const p of processes) assert.equal(await p.stop(), 0, p.output());
    } finally {
      await Promise.all(processes.map((p) => p.stop()));
      const redis = new Redis(REDIS_TEST_URL);
      const keys = await redis.keys(`vakt:quota:${key.id}:*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
      await database.drop();
    }
  });
});

describe('vakt serve --workers 2 on SQLite [slow]', () => {
  it('shares one quota exactly, replaces a crashed worker, and stops cleanly on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vakt-cluster-'));
    const url = `sqlite:${join(dir, 'vakt.db')}`;
    const key = await createKey(url, 15);
    const port = await freePort();
    const server = spawnVakt(['serve', '--workers', '2'], {
      VAKT_DATABASE_URL: url,
      VAKT_PORT: String(port),
      VAKT_LOG_LEVEL: 'silent',
    });
    try {
      await waitHealthy(port, server);
      const primary = server.child.pid ?? 0;
      let workers: number[] = [];
      for (let i = 0; i < 100 && workers.length < 2; i++) {
        workers = await childPids(primary);
        await new Promise((done) => setTimeout(done, 100));
      }
      assert.equal(workers.length, 2);

      const counts = await burst([port], key.key, 50);
      assert.equal(counts.get(200), 15);
      assert.equal(counts.get(429), 35);
      const victim = workers[0] ?? 0;
      process.kill(victim, 'SIGKILL');
      let replaced: number[] = [];
      for (let i = 0; i < 100; i++) {
        replaced = await childPids(primary);
        if (replaced.length === 2 && !replaced.includes(victim)) break;
        await new Promise((done) => setTimeout(done, 100));
      }
      assert.equal(replaced.length, 2, 'a new worker replaced the killed one');
      assert.ok(!replaced.includes(victim));
      await waitHealthy(port, server);
      assert.equal(await server.stop(), 0, server.output());
      for (const pid of replaced) {
        assert.throws(() => process.kill(pid, 0), 'workers exit with the primary');
      }
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
