// Wires config → store → quota counter → services for a server-side command; one place that opens things.
import type { Config } from '../config/config.js';
import { type Clock, systemClock } from '../core/time.js';
import type { QuotaCounter } from '../quota/quota-counter.js';
import { StoreQuotaCounter } from '../quota/store-quota-counter.js';
import { createServices, type Services } from '../services/services.js';
import { Store } from '../store/store.js';

export interface Runtime {
  readonly services: Services;
  close(): Promise<void>;
}

export async function openRuntime(config: Config, clock: Clock = systemClock): Promise<Runtime> {
  const store = await Store.open(config.databaseUrl, { poolSize: config.databasePoolSize });
  const quota: QuotaCounter = new StoreQuotaCounter(store);
  const services = createServices(config, store, quota, clock);
  return {
    services,
    close: async () => {
      await quota.close();
      await store.close();
    },
  };
}
