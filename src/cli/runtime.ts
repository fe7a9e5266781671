// Wires config → store → quota counter → services for a server-side command; one place that opens things.
import type { Config } from '../config/config.js';
import { type Clock, systemClock } from '../core/time.js';
import type { QuotaCounter } from '../quota/quota-counter.js';
import { StoreQuotaCounter } from '../quota/store-quota-counter.js';
import { ListBenignSources } from '../services/benign-sources.js';
import { CsvGeoLookup } from '../services/geo-lookup.js';
import { createServices, type Services } from '../services/services.js';
import { Store } from '../store/store.js';

export interface Runtime {
  readonly services: Services;
  close(): Promise<void>;
}

export async function openRuntime(config: Config, clock: Clock = systemClock): Promise<Runtime> {
  const store = await Store.open(config.databaseUrl, { poolSize: config.databasePoolSize });
  const quota: QuotaCounter = new StoreQuotaCounter(store);
  const benign = ListBenignSources.shipped();
  await benign.applyStored(store.db);
  // The geo/ASN tables load lazily (`services.geo.load()`): about 3 s and 130 MB, so never on the start-up path.
  const services = createServices(config, store, quota, clock, { benign, geo: new CsvGeoLookup() });
  return {
    services,
    close: async () => {
      await quota.close();
      await store.close();
    },
  };
}
