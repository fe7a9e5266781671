// Wires config → store → quota counter → services for a server-side command; one place that opens things.
import type { Config } from '../config/config.js';
import { type Clock, DAY_MS, systemClock } from '../core/time.js';
import type { QuotaCounter } from '../quota/quota-counter.js';
import { RedisQuotaCounter } from '../quota/redis-quota-counter.js';
import { ReservingQuotaCounter } from '../quota/reserving-quota-counter.js';
import { StoreQuotaCounter } from '../quota/store-quota-counter.js';
import { ListBenignSources } from '../services/benign-sources.js';
import { CsvGeoLookup } from '../services/geo-lookup.js';
import { type JobLog, JobRunner } from '../services/jobs.js';
import { createServices, type Services } from '../services/services.js';
import { purgeOldVersions, REVOKED_RETENTION_MS } from '../services/taxii-service.js';
import { Store } from '../store/store.js';

export interface Runtime {
  readonly services: Services;
  /** Background jobs (retention, and whatever features register); started only where jobs run. */
  readonly jobs: JobRunner;
  close(): Promise<void>;
}

export interface RuntimeOptions {
  clock?: Clock;
  jobLog?: JobLog;
  /** Skip opening Redis (commands like `purge` never charge quotas). */
  withoutQuota?: boolean;
}

/**
 * Opens the store (migrating it) and the quota counter: Redis when VAKT_REDIS_URL is set (shared
 * exactly by every instance), otherwise the store's usage table.
 */
export async function openRuntime(config: Config, options: RuntimeOptions = {}): Promise<Runtime> {
  const clock = options.clock ?? systemClock;
  const store = await Store.open(config.databaseUrl, { poolSize: config.databasePoolSize });
  let quota: QuotaCounter;
  if (config.redisUrl && !options.withoutQuota) {
    const redis = new RedisQuotaCounter(config.redisUrl);
    // Start even if Redis is down: counted requests answer 503 until it is back (fail closed).
    await redis.ready();
    quota = redis;
  } else {
    quota = new ReservingQuotaCounter(new StoreQuotaCounter(store));
  }
  const benign = ListBenignSources.shipped();
  await benign.applyStored(store.db);
  // The geo/ASN tables load lazily (`services.geo.load()`): about 3 s and 130 MB, so never on the start-up path.
  const services = createServices(config, store, quota, clock, { benign, geo: new CsvGeoLookup() });
  const jobs = new JobRunner(store, clock, options.jobLog);
  jobs.register(services.retention.job());
  jobs.register({
    name: 'taxii-revoked-cleanup',
    intervalMs: DAY_MS,
    run: (now) => purgeOldVersions(store.db, now - REVOKED_RETENTION_MS),
  });
  return {
    services,
    jobs,
    close: async () => {
      await jobs.stop();
      await quota.close();
      await store.close();
    },
  };
}
