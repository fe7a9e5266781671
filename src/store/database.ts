// The one Kysely schema shared by the SQLite and PostgreSQL stores (ARCHITECTURE convention 4).
import type { Generated, Kysely, Transaction } from 'kysely';

/** Times are integer epoch milliseconds; days are days since the epoch (UTC). */
export interface ApiKeysTable {
  id: string;
  name: string | null;
  tier: string;
  key_hash: string;
  display_prefix: string;
  /** JSON object counter → limit overriding the tier's limit for this key, or null. */
  quota_overrides: string | null;
  /** Reporter trust 0–1 for scoring, or null for the policy default. */
  trust: number | null;
  created_at: number;
  expires_at: number | null;
  disabled_at: number | null;
}

export interface UsageTable {
  key_id: string;
  counter: string;
  day: number;
  used: number;
}

export interface SettingsTable {
  name: string;
  value: string;
}

export interface ReputationsTable {
  ip: string;
  ip_key: Buffer;
  ip_version: number;
  first_seen: number;
  last_seen: number;
  /** Confidence level with the whitelist factor applied (what blacklists filter on). */
  score: number;
  /** Confidence level before the whitelist factor. */
  score_raw: number;
  score_updated_at: number;
  sessions: Generated<number>;
  events: Generated<number>;
  sensor_first_seen: number | null;
  sensor_last_seen: number | null;
  report_count: Generated<number>;
  distinct_reporters: Generated<number>;
  /** Σ reporterWeight over this IP's reporters (SPEC §5 item 2), maintained incrementally. */
  contributor_weight: Generated<number>;
  last_reported_at: number | null;
  country_code: string | null;
  asn: string | null;
  asn_org: string | null;
  stix_id: string;
  /** Highest severity among the IP's behaviours: 0 none, 1 low, 2 medium, 3 high, 4 very_high. */
  max_severity: Generated<number>;
}

export interface ReputationReportersTable {
  ip: string;
  reporter_id: string;
  reports: number;
  /** This reporter's current reporterWeight for this IP. */
  weight: number;
  first_reported_at: number;
  last_reported_at: number;
}

export interface ReputationCategoriesTable {
  ip: string;
  category: string;
  count: number;
}

/** Per-IP per-day counters, so that `maxAge` filters are served from aggregates, not raw rows. */
export interface ReputationDaysTable {
  ip: string;
  day: number;
  reports: number;
  sessions: number;
  events: number;
}

/** Raw telemetry: one row per accepted report (kept for the retention window, SPEC §6). */
export interface ReportsTable {
  id: Generated<number>;
  ip: string;
  ip_key: Buffer;
  key_id: string;
  category: string;
  categories: string;
  protocol: string | null;
  comment: string | null;
  reported_at: number;
  received_at: number;
  day: number;
}

/** Sessions and events per protocol; contributor reports with a protocol add to `events` (decision 0601). */
export interface ReputationProtocolsTable {
  ip: string;
  protocol: string;
  sessions: number;
  events: number;
}

/** Sessions of this IP that showed the behaviour. */
export interface ReputationBehaviorsTable {
  ip: string;
  behavior: string;
  count: number;
}

/** Events of this IP that matched the primitive. */
export interface ReputationPrimitivesTable {
  ip: string;
  primitive: string;
  count: number;
}

/** De-duplication key of every accepted sensor event (`source` = sensor) or imported report. */
export interface EvidenceIdsTable {
  source: string;
  id: string;
  ip: string;
}

/** Raw sensor events (SPEC §6 raw telemetry); `day` (UTC, from `ts`) is the partition and retention key. */
export interface EventsTable {
  day: number;
  sensor: string;
  event_id: string;
  session: string;
  ip: string;
  ts: number;
  type: string;
  /** The validated event as JSON. */
  data: string;
}

/** What one session contributed to the aggregates so far, so a later batch can apply only the difference. */
export interface SensorSessionsTable {
  sensor: string;
  session: string;
  ip: string;
  first_ts: number;
  last_ts: number;
  events: number;
  /** JSON SessionState (src/services/evidence-ingest.ts). */
  state: string;
}

/** Decision 0630: a session with stored events not yet aggregated; `delta` is a JSON PendingDelta. */
export interface PendingSessionsTable {
  sensor: string;
  session: string;
  ip: string;
  now: number;
  delta: string;
}

/** Decision 0852: an IP whose TAXII versions a bulk report left to the publisher; `now` as in the report. */
export interface PendingTaxiiTable {
  ip: string;
  now: number;
}

/** Decision 0853: a bulk-report row accepted and not yet applied (SQLite's deferred bulk path). */
export interface PendingReportsTable {
  id: Generated<number>;
  key_id: string;
  trust: number;
  received_at: number;
  ip: string;
  /** Comma list, primary category first (as `reports.categories`). */
  categories: string;
  protocol: string | null;
  comment: string | null;
  reported_at: number;
}

/**
 * Decision 0855: the new (de-duplicated) events of one sensor batch, accepted and not yet stored raw or
 * marked (SQLite's deferred sensor path); `events` is their JSON array, `now` the request's clock.
 */
export interface PendingEventBatchesTable {
  id: Generated<number>;
  now: number;
  events: string;
}

/** Decision 0605: a day's counts of one threshold primitive of an `acrossSessions` behaviour. */
export interface SensorAuthWindowsTable {
  ip: string;
  behavior: string;
  /** UTC day number (epoch days) of the events counted. */
  day: number;
  primitive: string;
  /** Events matching `primitive`, from the IP's sessions that do not show `behavior` themselves. */
  count: number;
}

export interface SensorUsernamesTable {
  username: string;
  protocol: string;
  sessions: number;
  first_seen: number;
  last_seen: number;
}

export interface SensorRecipientsTable {
  email: string;
  protocol: string;
  messages: number;
  first_seen: number;
  last_seen: number;
}

/** One imported third-party feed (SPEC §1): a snapshot replaced by each import. */
export interface FeedsTable {
  name: string;
  trust: number;
  /** 'list', or 'tor' for a Tor exit list (sets geolocation.isTor). */
  kind: string;
  imported_at: number;
  entries: number;
}

/** One address or CIDR a feed lists; `start_key`/`end_key` are the range's first and last 16-byte keys. */
export interface FeedEntriesTable {
  feed: string;
  /** Canonical text: an address, or `network/prefix`. */
  value: string;
  start_key: Buffer;
  end_key: Buffer;
  /** Prefix length over the 16-byte key (IPv4 + 96). */
  prefix: number;
  /** 1 for a single address (which also has a reputation row), 0 for a wider CIDR. */
  single: number;
  listed_at: number;
}

/** A whitelist source's list as refreshed by the operator; replaces the shipped file. */
export interface WhitelistListsTable {
  source: string;
  /** One address or CIDR per line. */
  entries: string;
  updated_at: number;
}

/** One version of one STIX object served by the TAXII feed (SPEC §4). */
export interface TaxiiVersionsTable {
  seq: Generated<number>;
  stix_id: string;
  object_type: string;
  ip: string | null;
  /** Epoch microseconds; unique, strictly increasing in commit order. */
  date_added_us: number;
  created_ms: number;
  modified_ms: number;
  confidence: number | null;
  /** 0 or 1. */
  revoked: number;
  /** 0 or 1: the object's first version. */
  is_first: number;
  /** 0 or 1: the object's newest version. */
  is_latest: number;
  /** The serialised STIX object. */
  object: string;
}

/** One row (id 1): the last date_added handed out, so the next is max(now, last + 1). */
export interface TaxiiClockTable {
  id: number;
  last_us: number;
}

export interface Database {
  feeds: FeedsTable;
  feed_entries: FeedEntriesTable;
  whitelist_lists: WhitelistListsTable;
  api_keys: ApiKeysTable;
  usage: UsageTable;
  settings: SettingsTable;
  reputations: ReputationsTable;
  reputation_reporters: ReputationReportersTable;
  reputation_categories: ReputationCategoriesTable;
  reputation_days: ReputationDaysTable;
  reports: ReportsTable;
  reputation_protocols: ReputationProtocolsTable;
  reputation_behaviors: ReputationBehaviorsTable;
  reputation_primitives: ReputationPrimitivesTable;
  evidence_ids: EvidenceIdsTable;
  events: EventsTable;
  sensor_sessions: SensorSessionsTable;
  pending_sessions: PendingSessionsTable;
  pending_taxii: PendingTaxiiTable;
  pending_reports: PendingReportsTable;
  pending_event_batches: PendingEventBatchesTable;
  sensor_auth_windows: SensorAuthWindowsTable;
  sensor_usernames: SensorUsernamesTable;
  sensor_recipients: SensorRecipientsTable;
  taxii_versions: TaxiiVersionsTable;
  taxii_clock: TaxiiClockTable;
}

export type Db = Kysely<Database>;
/** Either the database or an open transaction: repositories accept both. */
export type DbExecutor = Kysely<Database> | Transaction<Database>;
export type Dialect = 'sqlite' | 'postgres';
