// The service container: every use case built once per process from the config, store and quota counter.
import type { Config } from '../config/config.js';
import { DEFAULT_SCORING_POLICY, type ScoringPolicy } from '../core/scoring.js';
import type { Clock } from '../core/time.js';
import type { QuotaCounter } from '../quota/quota-counter.js';
import type { Store } from '../store/store.js';
import { type BenignSources, NO_BENIGN_SOURCES } from './benign-sources.js';
import { BlacklistService } from './blacklist-service.js';
import { BulkReportService } from './bulk-report-service.js';
import { KeyService } from './key-service.js';
import { ReportService } from './report-service.js';
import { ReputationScorer } from './reputation-scoring.js';
import { ReputationService } from './reputation-service.js';
import { RetentionService } from './retention-service.js';
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
  readonly retention: RetentionService;
  readonly taxii: TaxiiService;
}

export interface ServiceOptions {
  policy?: ScoringPolicy;
  benign?: BenignSources;
  /** Behaviours for TAXII indicators (the evidence pipeline plugs in here); categories only without it. */
  behaviors?: BehaviorSource;
}

export function createServices(
  config: Config,
  store: Store,
  quota: QuotaCounter,
  clock: Clock,
  options: ServiceOptions = {},
): Services {
  const policy = options.policy ?? DEFAULT_SCORING_POLICY;
  const benign = options.benign ?? NO_BENIGN_SOURCES;
  const scorer = new ReputationScorer(policy, benign);
  const reports = new ReportService(store, quota, scorer, policy);
  const taxii = new TaxiiService(store, config, options.behaviors ? { behaviors: options.behaviors } : {});
  // Indicator versions are published in the same transaction as the score change (SPEC §4).
  scorer.onScoreChanged((tx, row, _before, now) => taxii.publish(tx, row, now));
  const retention = new RetentionService(store, { retentionDays: config.retentionDays });
  // A purged IP leaves the feed as a revoked indicator, in the purge transaction (SPEC §4, §6).
  retention.onPurge(async (tx, ips, now) => {
    for (const ip of ips) await revokeIndicator(tx, ip, now);
  });
  return {
    config,
    clock,
    store,
    quota,
    scorer,
    taxii,
    keys: new KeyService(store, config.tiers, clock),
    reports,
    bulkReports: new BulkReportService(store, quota, scorer, reports, config.allowlist),
    blacklist: new BlacklistService(store, config.allowlist),
    reputation: new ReputationService(store, scorer, benign),
    retention,
  };
}
