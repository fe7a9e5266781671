// Schema migrations, written once with Kysely's schema builder; the few type names that differ come from `types`.
import { type CreateTableBuilder, type Kysely, type Migration, sql } from 'kysely';
import type { Dialect } from '../database.js';
import { taxiiMigration } from './taxii.js';

interface ColumnTypes {
  bigint: 'integer' | 'bigint';
  blob: 'blob' | 'bytea';
  real: 'real' | 'double precision';
}

function columnTypes(dialect: Dialect): ColumnTypes {
  return dialect === 'sqlite'
    ? { bigint: 'integer', blob: 'blob', real: 'real' }
    : { bigint: 'bigint', blob: 'bytea', real: 'double precision' };
}

// biome-ignore lint/suspicious/noExplicitAny: migrations operate on an untyped schema by design
type AnyDb = Kysely<any>;

function initial(dialect: Dialect): Migration {
  const t = columnTypes(dialect);
  return {
    async up(db: AnyDb) {
      await db.schema
        .createTable('api_keys')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text')
        .addColumn('tier', 'text', (c) => c.notNull())
        .addColumn('key_hash', 'text', (c) => c.notNull().unique())
        .addColumn('display_prefix', 'text', (c) => c.notNull())
        .addColumn('quota_overrides', 'text')
        .addColumn('trust', t.real)
        .addColumn('created_at', t.bigint, (c) => c.notNull())
        .addColumn('expires_at', t.bigint)
        .addColumn('disabled_at', t.bigint)
        .execute();
      await db.schema
        .createTable('usage')
        .addColumn('key_id', 'text', (c) => c.notNull())
        .addColumn('counter', 'text', (c) => c.notNull())
        .addColumn('day', 'integer', (c) => c.notNull())
        .addColumn('used', t.bigint, (c) => c.notNull())
        .addPrimaryKeyConstraint('usage_pk', ['key_id', 'counter', 'day'])
        .execute();
      await db.schema
        .createTable('settings')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('reputations')
        .addColumn('ip', 'text', (c) => c.primaryKey())
        .addColumn('ip_key', t.blob, (c) => c.notNull().unique())
        .addColumn('ip_version', 'integer', (c) => c.notNull())
        .addColumn('first_seen', t.bigint, (c) => c.notNull())
        .addColumn('last_seen', t.bigint, (c) => c.notNull())
        .addColumn('score', 'integer', (c) => c.notNull())
        .addColumn('score_raw', 'integer', (c) => c.notNull())
        .addColumn('score_updated_at', t.bigint, (c) => c.notNull())
        .addColumn('sessions', t.bigint, (c) => c.notNull().defaultTo(0))
        .addColumn('events', t.bigint, (c) => c.notNull().defaultTo(0))
        .addColumn('sensor_first_seen', t.bigint)
        .addColumn('sensor_last_seen', t.bigint)
        .addColumn('report_count', t.bigint, (c) => c.notNull().defaultTo(0))
        .addColumn('distinct_reporters', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('contributor_weight', t.real, (c) => c.notNull().defaultTo(0))
        .addColumn('last_reported_at', t.bigint)
        .addColumn('country_code', 'text')
        .addColumn('asn', 'text')
        .addColumn('asn_org', 'text')
        .addColumn('stix_id', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('reputations_score_idx')
        .on('reputations')
        .columns(['score desc', 'last_seen desc'])
        .execute();
      await db.schema
        .createIndex('reputations_last_seen_idx')
        .on('reputations')
        .column('last_seen')
        .execute();
      await db.schema
        .createTable('reputation_reporters')
        .addColumn('ip', 'text', (c) => c.notNull())
        .addColumn('reporter_id', 'text', (c) => c.notNull())
        .addColumn('reports', t.bigint, (c) => c.notNull())
        .addColumn('weight', t.real, (c) => c.notNull())
        .addColumn('first_reported_at', t.bigint, (c) => c.notNull())
        .addColumn('last_reported_at', t.bigint, (c) => c.notNull())
        .addPrimaryKeyConstraint('reputation_reporters_pk', ['ip', 'reporter_id'])
        .execute();
      await db.schema
        .createTable('reputation_categories')
        .addColumn('ip', 'text', (c) => c.notNull())
        .addColumn('category', 'text', (c) => c.notNull())
        .addColumn('count', t.bigint, (c) => c.notNull())
        .addPrimaryKeyConstraint('reputation_categories_pk', ['ip', 'category'])
        .execute();
      await db.schema
        .createTable('reputation_days')
        .addColumn('ip', 'text', (c) => c.notNull())
        .addColumn('day', 'integer', (c) => c.notNull())
        .addColumn('reports', t.bigint, (c) => c.notNull().defaultTo(0))
        .addColumn('sessions', t.bigint, (c) => c.notNull().defaultTo(0))
        .addColumn('events', t.bigint, (c) => c.notNull().defaultTo(0))
        .addPrimaryKeyConstraint('reputation_days_pk', ['ip', 'day'])
        .execute();
      // Raw telemetry (SPEC §6). PostgreSQL: range-partitioned by `day` so retention drops whole
      // partitions; the partition key must be part of the primary key, hence (day, id). SQLite: a plain
      // table with a day index for batched deletes. Partitions are managed in ../partitions.ts.
      let reports: CreateTableBuilder<'reports', string> = db.schema.createTable('reports');
      reports =
        dialect === 'sqlite'
          ? reports.addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
          : reports.addColumn('id', 'bigserial', (c) => c.notNull());
      reports = reports
        .addColumn('ip', 'text', (c) => c.notNull())
        .addColumn('ip_key', t.blob, (c) => c.notNull())
        .addColumn('key_id', 'text', (c) => c.notNull())
        .addColumn('category', 'text', (c) => c.notNull())
        .addColumn('categories', 'text', (c) => c.notNull())
        .addColumn('protocol', 'text')
        .addColumn('comment', 'text')
        .addColumn('reported_at', t.bigint, (c) => c.notNull())
        .addColumn('received_at', t.bigint, (c) => c.notNull())
        .addColumn('day', 'integer', (c) => c.notNull());
      if (dialect === 'postgres') {
        reports = reports
          .addPrimaryKeyConstraint('reports_pk', ['day', 'id'])
          .modifyEnd(sql`partition by range (day)`);
      }
      await reports.execute();
      if (dialect === 'postgres') {
        // Catches rows outside every daily partition (old back-dated reports); see partitions.ts.
        await sql`create table reports_default partition of reports default`.execute(db);
      }
      await db.schema
        .createIndex('reports_merge_idx')
        .on('reports')
        .columns(['key_id', 'ip', 'category', 'received_at'])
        .execute();
      await db.schema.createIndex('reports_ip_idx').on('reports').columns(['ip', 'received_at']).execute();
      await db.schema.createIndex('reports_day_idx').on('reports').column('day').execute();
    },
  };
}

/**
 * Sensor evidence (SPEC §1, §7): raw events, per-session state and the per-IP sensor aggregates.
 *
 * Per-IP child tables (keyed by `ip`; the retention purge deletes their rows with the reputation):
 * `reputation_protocols`, `reputation_behaviors`, `reputation_primitives`, `sensor_sessions`,
 * `evidence_ids`. Raw telemetry (by `day`, dropped whole by age): `events`. Global (not per IP):
 * `sensor_usernames`, `sensor_recipients`. Column added: `reputations.max_severity`.
 */
function evidence(dialect: Dialect): Migration {
  const t = columnTypes(dialect);
  return {
    async up(db: AnyDb) {
      await db.schema
        .alterTable('reputations')
        .addColumn('max_severity', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema
        .createTable('reputation_protocols')
        .addColumn('ip', 'text', (c) => c.notNull())
        .addColumn('protocol', 'text', (c) => c.notNull())
        .addColumn('sessions', t.bigint, (c) => c.notNull().defaultTo(0))
        .addColumn('events', t.bigint, (c) => c.notNull().defaultTo(0))
        .addPrimaryKeyConstraint('reputation_protocols_pk', ['ip', 'protocol'])
        .execute();
      await db.schema
        .createIndex('reputation_protocols_protocol_idx')
        .on('reputation_protocols')
        .columns(['protocol', 'ip'])
        .execute();
      await db.schema
        .createTable('reputation_behaviors')
        .addColumn('ip', 'text', (c) => c.notNull())
        .addColumn('behavior', 'text', (c) => c.notNull())
        .addColumn('count', t.bigint, (c) => c.notNull())
        .addPrimaryKeyConstraint('reputation_behaviors_pk', ['ip', 'behavior'])
        .execute();
      await db.schema
        .createTable('reputation_primitives')
        .addColumn('ip', 'text', (c) => c.notNull())
        .addColumn('primitive', 'text', (c) => c.notNull())
        .addColumn('count', t.bigint, (c) => c.notNull())
        .addPrimaryKeyConstraint('reputation_primitives_pk', ['ip', 'primitive'])
        .execute();
      // De-duplication keys of every accepted event or imported report, outside the day-partitioned raw
      // table so that dropping old raw days never lets a re-import count twice (decision 0600).
      // SQLite: WITHOUT ROWID keeps this random-keyed table in one B-tree instead of a table plus index.
      await db.schema
        .createTable('evidence_ids')
        .addColumn('source', 'text', (c) => c.notNull())
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('ip', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('evidence_ids_pk', ['source', 'id'])
        .$call((builder) => (dialect === 'sqlite' ? builder.modifyEnd(sql`without rowid`) : builder))
        .execute();
      await db.schema.createIndex('evidence_ids_ip_idx').on('evidence_ids').column('ip').execute();
      // Raw events need no key of their own: evidence_ids admits each event once. PostgreSQL:
      // range-partitioned by `day` with a default partition, like `reports` (partitions.ts lists both),
      // so retention drops whole days (SPEC §6). SQLite: a rowid table with a day index.
      let events: CreateTableBuilder<'events', string> = db.schema
        .createTable('events')
        .addColumn('day', 'integer', (c) => c.notNull())
        .addColumn('sensor', 'text', (c) => c.notNull())
        .addColumn('event_id', 'text', (c) => c.notNull())
        .addColumn('session', 'text', (c) => c.notNull())
        .addColumn('ip', 'text', (c) => c.notNull())
        .addColumn('ts', t.bigint, (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('data', 'text', (c) => c.notNull());
      if (dialect === 'postgres') events = events.modifyEnd(sql`partition by range (day)`);
      await events.execute();
      if (dialect === 'postgres') {
        await sql`create table events_default partition of events default`.execute(db);
      }
      await db.schema.createIndex('events_day_idx').on('events').column('day').execute();
      await db.schema.createIndex('events_session_idx').on('events').columns(['sensor', 'session']).execute();
      await db.schema
        .createTable('sensor_sessions')
        .addColumn('sensor', 'text', (c) => c.notNull())
        .addColumn('session', 'text', (c) => c.notNull())
        .addColumn('ip', 'text', (c) => c.notNull())
        .addColumn('first_ts', t.bigint, (c) => c.notNull())
        .addColumn('last_ts', t.bigint, (c) => c.notNull())
        .addColumn('events', t.bigint, (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('sensor_sessions_pk', ['sensor', 'session'])
        .execute();
      await db.schema.createIndex('sensor_sessions_ip_idx').on('sensor_sessions').column('ip').execute();
      await db.schema
        .createTable('sensor_usernames')
        .addColumn('username', 'text', (c) => c.notNull())
        .addColumn('protocol', 'text', (c) => c.notNull())
        .addColumn('sessions', t.bigint, (c) => c.notNull())
        .addColumn('first_seen', t.bigint, (c) => c.notNull())
        .addColumn('last_seen', t.bigint, (c) => c.notNull())
        .addPrimaryKeyConstraint('sensor_usernames_pk', ['username', 'protocol'])
        .execute();
      await db.schema
        .createTable('sensor_recipients')
        .addColumn('email', 'text', (c) => c.notNull())
        .addColumn('protocol', 'text', (c) => c.notNull())
        .addColumn('messages', t.bigint, (c) => c.notNull())
        .addColumn('first_seen', t.bigint, (c) => c.notNull())
        .addColumn('last_seen', t.bigint, (c) => c.notNull())
        .addPrimaryKeyConstraint('sensor_recipients_pk', ['email', 'protocol'])
        .execute();
    },
  };
}

/** Imported feeds, their listings, and operator-refreshed whitelist lists (SPEC §1 feeds and whitelist). */
function enrichment(dialect: Dialect): Migration {
  const t = columnTypes(dialect);
  return {
    async up(db: AnyDb) {
      await db.schema
        .createTable('feeds')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('trust', t.real, (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('imported_at', t.bigint, (c) => c.notNull())
        .addColumn('entries', t.bigint, (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('feed_entries')
        .addColumn('feed', 'text', (c) => c.notNull())
        .addColumn('value', 'text', (c) => c.notNull())
        .addColumn('start_key', t.blob, (c) => c.notNull())
        .addColumn('end_key', t.blob, (c) => c.notNull())
        .addColumn('prefix', 'integer', (c) => c.notNull())
        .addColumn('single', 'integer', (c) => c.notNull())
        .addColumn('listed_at', t.bigint, (c) => c.notNull())
        .addPrimaryKeyConstraint('feed_entries_pk', ['feed', 'value'])
        .execute();
      await db.schema.createIndex('feed_entries_start_idx').on('feed_entries').column('start_key').execute();
      await db.schema
        .createTable('whitelist_lists')
        .addColumn('source', 'text', (c) => c.primaryKey())
        .addColumn('entries', 'text', (c) => c.notNull())
        .addColumn('updated_at', t.bigint, (c) => c.notNull())
        .execute();
    },
  };
}

/**
 * Migration 0006: list-order indexes matching the blacklist ORDER BY exactly (ip is the tie-break), one
 * per score column, so keyset pages, the fingerprint and the tier-cap probe are index range reads with
 * no sort. They cover the old (score, last_seen) index as a prefix, which is dropped to spare writes.
 */
const blacklistIndexes: Migration = {
  async up(db: AnyDb) {
    await db.schema
      .createIndex('reputations_list_idx')
      .on('reputations')
      .columns(['score desc', 'last_seen desc', 'ip desc'])
      .execute();
    await db.schema
      .createIndex('reputations_list_raw_idx')
      .on('reputations')
      .columns(['score_raw desc', 'last_seen desc', 'ip desc'])
      .execute();
    await db.schema.dropIndex('reputations_score_idx').execute();
  },
};

/**
 * Migration 0007: an index on score_updated_at, so the blacklist's ETag for address-only formats can
 * include the newest rescore anywhere (one index probe) instead of reading every listed row.
 */
const scoreUpdatedIndex: Migration = {
  async up(db: AnyDb) {
    await db.schema
      .createIndex('reputations_score_updated_idx')
      .on('reputations')
      .column('score_updated_at')
      .execute();
  },
};

/**
 * Migration 0008: per-IP, per-UTC-day counts of the threshold primitives of `acrossSessions` behaviours,
 * summed over the day's sessions that do not show the behaviour themselves (decision 0605). A per-IP
 * child table: purged with the IP's reputation.
 */
function authWindows(dialect: Dialect): Migration {
  const t = columnTypes(dialect);
  return {
    async up(db: AnyDb) {
      await db.schema
        .createTable('sensor_auth_windows')
        .addColumn('ip', 'text', (c) => c.notNull())
        .addColumn('behavior', 'text', (c) => c.notNull())
        .addColumn('day', 'integer', (c) => c.notNull())
        .addColumn('primitive', 'text', (c) => c.notNull())
        .addColumn('count', t.bigint, (c) => c.notNull())
        .addPrimaryKeyConstraint('sensor_auth_windows_pk', ['ip', 'behavior', 'day', 'primitive'])
        .$call((builder) => (dialect === 'sqlite' ? builder.modifyEnd(sql`without rowid`) : builder))
        .execute();
    },
  };
}

/**
 * Migration 0009: sessions whose new events are stored but not yet aggregated (decision 0630). Written by
 * ingest in the events' transaction, cleared by the aggregator in the transaction that applies them.
 * `delta` holds what the new events add by themselves (counts per protocol and day, username and
 * recipient ranges, first/last timestamps); `ip` is the session's address as first seen; `now` the
 * latest ingest time (the aggregator scores as of it).
 */
function pendingSessions(dialect: Dialect): Migration {
  const t = columnTypes(dialect);
  return {
    async up(db: AnyDb) {
      await db.schema
        .createTable('pending_sessions')
        .addColumn('sensor', 'text', (c) => c.notNull())
        .addColumn('session', 'text', (c) => c.notNull())
        .addColumn('ip', 'text', (c) => c.notNull())
        .addColumn('now', t.bigint, (c) => c.notNull())
        .addColumn('delta', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('pending_sessions_pk', ['sensor', 'session'])
        .$call((builder) => (dialect === 'sqlite' ? builder.modifyEnd(sql`without rowid`) : builder))
        .execute();
    },
  };
}

/**
 * Migration 0010: feed CIDR listings (single = 0) read without a scan of the single-address listings,
 * which a large feed holds by the hundred thousand: the blacklist reads every CIDR listing per request
 * (decision 0703).
 */
const feedRangeIndex: Migration = {
  async up(db: AnyDb) {
    await db.schema
      .createIndex('feed_entries_single_idx')
      .on('feed_entries')
      .columns(['single', 'start_key'])
      .execute();
  },
};

/**
 * Migration 0011: IPs whose score a bulk report changed and whose TAXII versions are not yet published
 * (decision 0852). Written in the report's transaction, cleared by the publisher in the transaction that
 * publishes them; `now` is the latest report time that marked the IP (the versions' `modified`).
 */
function pendingTaxii(dialect: Dialect): Migration {
  const t = columnTypes(dialect);
  return {
    async up(db: AnyDb) {
      await db.schema
        .createTable('pending_taxii')
        .addColumn('ip', 'text', (c) => c.primaryKey())
        .addColumn('now', t.bigint, (c) => c.notNull())
        .$call((builder) => (dialect === 'sqlite' ? builder.modifyEnd(sql`without rowid`) : builder))
        .execute();
    },
  };
}

/**
 * Migration 0012 (decision 0853): bulk reports accepted but not yet applied to the reports table, the
 * aggregates and the scores. The request stores its valid rows here (one append-only B-tree) and
 * answers; the bulk-report queue applies them in id order and deletes them in the same transaction.
 * `trust` is the reporter's trust at acceptance, so applying later weighs the rows as the request would.
 */
function pendingReports(dialect: Dialect): Migration {
  const t = columnTypes(dialect);
  return {
    async up(db: AnyDb) {
      await db.schema
        .createTable('pending_reports')
        .addColumn('id', dialect === 'sqlite' ? 'integer' : 'bigserial', (c) => c.primaryKey())
        .addColumn('key_id', 'text', (c) => c.notNull())
        .addColumn('trust', t.real, (c) => c.notNull())
        .addColumn('received_at', t.bigint, (c) => c.notNull())
        .addColumn('ip', 'text', (c) => c.notNull())
        .addColumn('categories', 'text', (c) => c.notNull())
        .addColumn('protocol', 'text')
        .addColumn('comment', 'text')
        .addColumn('reported_at', t.bigint, (c) => c.notNull())
        .execute();
    },
  };
}

/**
 * Migration 0013 (decision 0855): sensor batches accepted (their events de-duplicated against
 * evidence_ids in the same transaction) but not yet written to `events` and `pending_sessions`. The
 * aggregator expands them in id order and deletes them in the same transaction. SQLite only in use.
 */
function pendingEventBatches(dialect: Dialect): Migration {
  const t = columnTypes(dialect);
  return {
    async up(db: AnyDb) {
      await db.schema
        .createTable('pending_event_batches')
        .addColumn('id', dialect === 'sqlite' ? 'integer' : 'bigserial', (c) => c.primaryKey())
        .addColumn('now', t.bigint, (c) => c.notNull())
        .addColumn('events', 'text', (c) => c.notNull())
        .execute();
    },
  };
}

/** Every migration in order; names sort lexically. */
export function migrations(dialect: Dialect): Record<string, Migration> {
  return {
    '0001-initial': initial(dialect),
    '0003-taxii': taxiiMigration(dialect),
    '0004-evidence': evidence(dialect),
    '0005-enrichment': enrichment(dialect),
    '0006-blacklist': blacklistIndexes,
    '0007-score-updated-index': scoreUpdatedIndex,
    '0008-auth-windows': authWindows(dialect),
    '0009-pending-sessions': pendingSessions(dialect),
    '0010-feed-range-index': feedRangeIndex,
    '0011-pending-taxii': pendingTaxii(dialect),
    '0012-pending-reports': pendingReports(dialect),
    '0013-pending-event-batches': pendingEventBatches(dialect),
  };
}
