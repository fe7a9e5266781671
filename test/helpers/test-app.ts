// Builds a complete app on a fresh database of the given engine, with a fake clock, for route tests via inject().

import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { type Config, loadConfig } from '../../src/config/config.js';
import type { TierId } from '../../src/core/tiers.js';
import { buildApp } from '../../src/http/build-app.js';
import type { QuotaCounter } from '../../src/quota/quota-counter.js';
import { RedisQuotaCounter } from '../../src/quota/redis-quota-counter.js';
import { ReservingQuotaCounter } from '../../src/quota/reserving-quota-counter.js';
import { StoreQuotaCounter } from '../../src/quota/store-quota-counter.js';
import type { CreateKeyOptions } from '../../src/services/key-service.js';
import { createServices, type ServiceOptions, type Services } from '../../src/services/services.js';
import { Store } from '../../src/store/store.js';
import {
  createTestDatabase,
  type Engine,
  type QuotaBackend,
  REDIS_TEST_URL,
  type TestDatabase,
} from './engines.js';
import { FakeClock } from './fake-clock.js';

export interface TestApp {
  readonly engine: Engine;
  readonly app: FastifyInstance;
  readonly services: Services;
  readonly store: Store;
  readonly clock: FakeClock;
  readonly config: Config;
  readonly database: TestDatabase;
  /** Creates a key and returns its secret. */
  key(tier: TierId, options?: Partial<CreateKeyOptions>): Promise<string>;
  close(): Promise<void>;
}

export interface TestAppOptions {
  /** Reuse this database instead of creating (and later dropping) a fresh one. */
  readonly database?: TestDatabase;
  /** Where usage counters live; default the store. */
  readonly quota?: QuotaBackend;
  /** Redis URL for `quota: 'redis'`; default the test Redis (db 15). */
  readonly redisUrl?: string;
  /** Passed to createServices (e.g. a loaded geo table). */
  readonly services?: ServiceOptions;
}

/**
 * Opens a Redis quota counter on the test Redis (db 15) under a key prefix unique to this call, so
 * parallel test files never see each other's counters; `close` also deletes its keys.
 */
export function createTestRedisCounter(url: string = REDIS_TEST_URL): RedisQuotaCounter {
  return new RedisQuotaCounter(url, { prefix: `vakt:test:${randomBytes(6).toString('hex')}:` });
}

export async function createTestApp(
  engine: Engine,
  env: Record<string, string> = {},
  databaseOrOptions?: TestDatabase | TestAppOptions,
): Promise<TestApp> {
  const options: TestAppOptions =
    databaseOrOptions && 'url' in databaseOrOptions
      ? { database: databaseOrOptions }
      : (databaseOrOptions ?? {});
  const database = options.database;
  const db = database ?? (await createTestDatabase(engine));
  const config = loadConfig({ VAKT_DATABASE_URL: db.url, VAKT_LOG_LEVEL: 'silent', ...env });
  const store = await Store.open(config.databaseUrl, { poolSize: 5 });
  const clock = new FakeClock();
  let quota: QuotaCounter;
  if (options.quota === 'redis') {
    const redis = createTestRedisCounter(options.redisUrl);
    await redis.ready();
    quota = redis;
  } else {
    quota = new ReservingQuotaCounter(new StoreQuotaCounter(store));
  }
  const services = createServices(config, store, quota, clock, options.services);
  const app = await buildApp(services);
  return {
    engine,
    app,
    services,
    store,
    clock,
    config,
    database: db,
    key: async (tier, options = {}) => (await services.keys.create({ tier, ...options })).key,
    close: async () => {
      await app.close();
      if (quota instanceof RedisQuotaCounter) await deleteRedisKeys(quota.prefix);
      await quota.close();
      await store.close();
      if (!database) await db.drop();
    },
  };
}

export function bearer(key: string) {
  return { authorization: `Bearer ${key}` };
}

/** Removes every key under `prefix` in the test Redis database. */
export async function deleteRedisKeys(prefix: string, url = REDIS_TEST_URL): Promise<void> {
  const { Redis } = await import('ioredis');
  const client = new Redis(url, { maxRetriesPerRequest: 0 });
  client.on('error', () => {});
  try {
    const keys = await client.keys(`${prefix}*`);
    if (keys.length > 0) await client.del(...keys);
  } finally {
    client.disconnect();
  }
}
