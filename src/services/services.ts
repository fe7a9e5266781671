// The service container: every use case built once per process from the config, store and quota counter.
import type { Config } from '../config/config.js';
import { loadCatalog } from '../core/detection/catalog.js';
import { compileCatalog } from '../core/detection/classify.js';
import { DEFAULT_SCORING_POLICY, type ScoringPolicy } from '../core/scoring.js';
import type { Clock } from '../core/time.js';
import type { QuotaCounter } from '../quota/quota-counter.js';
import type { Store } from '../store/store.js';
import { type BenignSources, NO_BENIGN_SOURCES } from './benign-sources.js';
import { EvidenceService } from './evidence-ingest.js';
import { KeyService } from './key-service.js';
import { ReportService } from './report-service.js';
import { ReputationScorer } from './reputation-scoring.js';
import { ReputationService } from './reputation-service.js';

export interface Services {
  readonly config: Config;
  readonly clock: Clock;
  readonly store: Store;
  readonly quota: QuotaCounter;
  readonly keys: KeyService;
  readonly reports: ReportService;
  readonly reputation: ReputationService;
  readonly scorer: ReputationScorer;
  readonly evidence: EvidenceService;
}

export interface ServiceOptions {
  policy?: ScoringPolicy;
  benign?: BenignSources;
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
  return {
    config,
    clock,
    store,
    quota,
    scorer,
    keys: new KeyService(store, config.tiers, clock),
    reports: new ReportService(store, quota, scorer, policy),
    reputation: new ReputationService(store, scorer, benign),
    evidence: new EvidenceService(store, scorer, compileCatalog(loadCatalog())),
  };
}
