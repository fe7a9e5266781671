// The service container: every use case built once per process from the config, store and quota counter.
import type { Config } from '../config/config.js';
import { loadCatalog } from '../core/detection/catalog.js';
import { compileCatalog } from '../core/detection/classify.js';
import { cidrContains } from '../core/ip.js';
import { DEFAULT_SCORING_POLICY, type ScoringPolicy } from '../core/scoring.js';
import type { Clock } from '../core/time.js';
import type { QuotaCounter } from '../quota/quota-counter.js';
import type { Store } from '../store/store.js';
import { type BenignSources, ListBenignSources } from './benign-sources.js';
import { BlacklistService } from './blacklist-service.js';
import { BulkReportQueue } from './bulk-report-queue.js';
import { BulkReportService } from './bulk-report-service.js';
import { EvidenceService } from './evidence-ingest.js';
import { behaviorsFor, behaviorsForMany } from './evidence-read.js';
import { type GeoLookup, NO_GEO } from './geo-lookup.js';
import { KeyService } from './key-service.js';
import { ReportService } from './report-service.js';
import { ReputationScorer } from './reputation-scoring.js';
import { ReputationService } from './reputation-service.js';
import { RetentionService } from './retention-service.js';
import { TaxiiOutbox } from './taxii-outbox.js';
import { type BehaviorSource, revokeIndicator, TaxiiService } from './taxii-service.js';

export interface Services {
  readonly config: Config;
  readonly clock: Clock;
  readonly store: Store;
  readonly quota: QuotaCounter;
  readonly keys: KeyService;
  readonly reports: ReportService;
  readonly bulkReports: BulkReportService;
  readonly blacklist: BlacklistService;
  readonly reputation: ReputationService;
  readonly scorer: ReputationScorer;
  readonly evidence: EvidenceService;
  readonly retention: RetentionService;
  readonly taxii: TaxiiService;
  /** Bulk reports' deferred TAXII publishing (decision 0852); `drain()` before reading the feed in tests. */
  readonly taxiiOutbox: TaxiiOutbox;
  /**
   * Bulk rows accepted and not yet applied (decision 0853; SQLite). `drain()` applies them; reads in this
   * process (check, bulk check, blacklist, single reports) wait for it on their own.
   */
  readonly bulkQueue: BulkReportQueue;
  readonly benign: BenignSources;
  readonly geo: GeoLookup;
}

export interface ServiceOptions {
  policy?: ScoringPolicy;
  /** Default: the lists shipped in data-files/benign. */
  benign?: BenignSources;
  /** Default: none (all-null geolocation); `vakt serve` passes the @ip-location-db tables. */
  geo?: GeoLookup;
  /** Behaviours for TAXII indicators (the evidence pipeline plugs in here); categories only without it. */
  behaviors?: BehaviorSource;
}

/**
 * True when the 16-byte key lies in the operator allowlist (SPEC §1): such an address is never stored as
 * reported and never appears in a blacklist, TAXII feed or guard rule set.
 */
export function isAllowlisted(config: Pick<Config, 'allowlist'>, ipKey: Buffer): boolean {
  return config.allowlist.some((cidr) => cidrContains(cidr, ipKey));
}

export function createServices(
  config: Config,
  store: Store,
  quota: QuotaCounter,
  clock: Clock,
  options: ServiceOptions = {},
): Services {
  const policy = options.policy ?? DEFAULT_SCORING_POLICY;
  const benign = options.benign ?? ListBenignSources.shipped();
  const geo = options.geo ?? NO_GEO;
  const scorer = new ReputationScorer(policy, benign);
  // Indicators carry the IP's sensor behaviours (labels, ATT&CK references, kill-chain phases).
  const taxii = new TaxiiService(
    store,
    config,
    options.behaviors
      ? { behaviors: options.behaviors }
      : { behaviors: behaviorsFor, behaviorsMany: behaviorsForMany },
  );
  // Indicator versions are published in the same transaction as the score change (SPEC §4), except
  // for bulk reports: they mark the IPs in that transaction and the outbox publishes them right after
  // the commit, a whole batch per transaction (decision 0852).
  // The outbox publishes what bulk reports have changed, so it applies accepted bulk rows first.
  const taxiiOutbox: TaxiiOutbox = new TaxiiOutbox(store, taxii, (): Promise<void> => bulkQueue.drain());
  // Bulk reports on SQLite are applied after the answer (decision 0853); reads in this process wait.
  const bulkQueue: BulkReportQueue = new BulkReportQueue(store, scorer, policy, geo, taxiiOutbox);
  const reports = new ReportService(store, quota, scorer, policy, geo, bulkQueue);
  // Neither in the feed before nor now: nothing to publish or revoke (skips a look-up per IP).
  const feedRelevant = (row: { score: number }, before: number) =>
    before >= config.taxiiScoreMinimum || row.score >= config.taxiiScoreMinimum;
  scorer.onScoreChanged(
    (tx, row, before, now) => (feedRelevant(row, before) ? taxii.publish(tx, row, now) : Promise.resolve()),
    (tx, changes, now) =>
      taxii.publishMany(
        tx,
        changes.filter((c) => feedRelevant(c.row, c.before)).map((c) => c.row),
        now,
      ),
    (tx, changes, now, sqlite) =>
      taxiiOutbox.mark(
        tx,
        changes.filter((c) => feedRelevant(c, c.before)).map((c) => c.ip),
        now,
        sqlite,
      ),
  );
  const retention = new RetentionService(store, { retentionDays: config.retentionDays });
  // A purged IP leaves the feed as a revoked indicator, in the purge transaction (SPEC §4, §6).
  const reputation = new ReputationService(store, scorer, benign, geo, bulkQueue);
  retention.onPurge(async (tx, ips, now) => {
    for (const ip of ips) await revokeIndicator(tx, ip, now);
    reputation.invalidateAll();
  });
  return {
    config,
    clock,
    store,
    quota,
    scorer,
    taxii,
    taxiiOutbox,
    benign,
    geo,
    keys: new KeyService(store, config.tiers, clock),
    reports,
    bulkReports: new BulkReportService(
      store,
      quota,
      scorer,
      reports,
      config.allowlist,
      true,
      taxiiOutbox,
      bulkQueue,
    ),
    bulkQueue,
    blacklist: new BlacklistService(store, config.allowlist, {
      feeds: { scorer, benign, geo },
      pending: bulkQueue,
    }),
    reputation,
    evidence: new EvidenceService(store, scorer, compileCatalog(loadCatalog()), geo),
    retention,
  };
}
