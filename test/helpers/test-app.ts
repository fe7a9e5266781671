// Builds a complete app on a fresh database of the given engine, with a fake clock, for route tests via inject().
import type { FastifyInstance } from 'fastify';
import { type Config, loadConfig } from '../../src/config/config.js';
import type { TierId } from '../../src/core/tiers.js';
import { buildApp } from '../../src/http/build-app.js';
import { StoreQuotaCounter } from '../../src/quota/store-quota-counter.js';
import type { CreateKeyOptions } from '../../src/services/key-service.js';
import { createServices, type ServiceOptions, type Services } from '../../src/services/services.js';
import { Store } from '../../src/store/store.js';
import { createTestDatabase, type Engine, type TestDatabase } from './engines.js';
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

export async function createTestApp(
  engine: Engine,
  env: Record<string, string> = {},
  database?: TestDatabase,
  options: ServiceOptions = {},
): Promise<TestApp> {
  const db = database ?? (await createTestDatabase(engine));
  const config = loadConfig({ VAKT_DATABASE_URL: db.url, VAKT_LOG_LEVEL: 'silent', ...env });
  const store = await Store.open(config.databaseUrl, { poolSize: 5 });
  const clock = new FakeClock();
  const quota = new StoreQuotaCounter(store);
  const services = createServices(config, store, quota, clock, options);
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
      await store.close();
      if (!database) await db.drop();
    },
  };
}

export function bearer(key: string) {
  return { authorization: `Bearer ${key}` };
}
