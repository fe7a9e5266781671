// TAXII version rows (SPEC §4): the feed clock, publishing a version, and the keyset page queries.
import type BetterSqlite3 from 'better-sqlite3';
import { type Selectable, sql } from 'kysely';
import type { DbExecutor, TaxiiVersionsTable } from './database.js';
import { sqliteStatement } from './sqlite-rows.js';

export type TaxiiVersionRow = Selectable<TaxiiVersionsTable>;

/** The columns a page needs; `object` is the stored JSON text. */
export interface TaxiiPageRow {
  readonly stix_id: string;
  readonly object_type: string;
  readonly date_added_us: number;
  readonly modified_ms: number;
  readonly object: string;
}

/**
 * Hands out the next `date_added` (epoch µs): max(now, last + 1). The update locks the clock row until
 * the caller's transaction ends (PostgreSQL row lock; SQLite's single writer), so values are unique,
 * strictly increasing, and become visible to readers in the same order — no keyset page can skip a
 * version committed later with a smaller value. Must run inside the publishing transaction.
 */
export async function allocateDateAdded(tx: DbExecutor, nowUs: number): Promise<number> {
  const row = await tx
    .updateTable('taxii_clock')
    .set({
      last_us: sql<number>`case when cast(${nowUs} as bigint) > last_us then cast(${nowUs} as bigint) else last_us + 1 end`,
    })
    .where('id', '=', 1)
    .returning('last_us')
    .executeTakeFirstOrThrow();
  return Number(row.last_us);
}

/** Takes the feed clock's lock without moving it (serialises one-off setup across processes). */
export async function lockFeedClock(tx: DbExecutor): Promise<void> {
  await tx.updateTable('taxii_clock').set({ last_us: sql<number>`last_us` }).where('id', '=', 1).execute();
}

export async function latestVersionOf(db: DbExecutor, stixId: string): Promise<TaxiiVersionRow | undefined> {
  return db
    .selectFrom('taxii_versions')
    .selectAll()
    .where('stix_id', '=', stixId)
    .orderBy('date_added_us', 'desc')
    .limit(1)
    .executeTakeFirst();
}

/** The newest version published for an IP, whatever its STIX id (an IP gets a new id after revocation). */
export async function latestVersionForIp(db: DbExecutor, ip: string): Promise<TaxiiVersionRow | undefined> {
  return db
    .selectFrom('taxii_versions')
    .selectAll()
    .where('ip', '=', ip)
    .orderBy('date_added_us', 'desc')
    .limit(1)
    .executeTakeFirst();
}

export interface NewVersion {
  readonly stixId: string;
  readonly objectType: string;
  readonly ip: string | null;
  readonly dateAddedUs: number;
  readonly createdMs: number;
  readonly modifiedMs: number;
  readonly confidence: number | null;
  readonly revoked: boolean;
  readonly object: string;
}

/** The `taxii_versions` row of a new latest version. */
function versionRow(version: NewVersion, isFirst: boolean) {
  return {
    stix_id: version.stixId,
    object_type: version.objectType,
    ip: version.ip,
    date_added_us: version.dateAddedUs,
    created_ms: version.createdMs,
    modified_ms: version.modifiedMs,
    confidence: version.confidence,
    revoked: version.revoked ? 1 : 0,
    is_first: isFirst ? 1 : 0,
    is_latest: 1,
    object: version.object,
  };
}

/** Stores a new newest version; the previous newest loses its `is_latest` flag in the same transaction. */
export async function insertVersion(tx: DbExecutor, version: NewVersion): Promise<void> {
  const previous = await tx
    .updateTable('taxii_versions')
    .set({ is_latest: 0 })
    .where('stix_id', '=', version.stixId)
    // Unary plus keeps the planner off the (is_latest, date_added_us) index, which SQLite otherwise
    // picks without statistics and walks every listed version per publish (quadratic imports).
    .where(sql<number>`+is_latest`, '=', 1)
    .executeTakeFirst();
  const hadPrevious = Number(previous.numUpdatedRows) > 0;
  await tx.insertInto('taxii_versions').values(versionRow(version, !hadPrevious)).execute();
}

export interface VersionFilter {
  /** Exclusive lower bound on date_added (µs). */
  readonly afterUs?: number;
  readonly offset?: number;
  readonly ids?: readonly string[];
  readonly types?: readonly string[];
  /** Which versions: all, or any of first / last / exact `modified` times (ms). */
  readonly versions: { all: boolean; first: boolean; last: boolean; modifiedMs: readonly number[] };
  /** Rows to fetch (the caller asks for limit + 1 to learn whether there are more). */
  readonly take: number;
}

/** One keyset page in date_added order. Served by (is_latest, date_added_us) for the default listing. */
export async function listVersionRows(db: DbExecutor, filter: VersionFilter): Promise<TaxiiPageRow[]> {
  const { versions } = filter;
  let query = db
    .selectFrom('taxii_versions')
    .select(['stix_id', 'object_type', 'date_added_us', 'modified_ms', 'object']);
  if (filter.afterUs !== undefined) query = query.where('date_added_us', '>', filter.afterUs);
  if (filter.ids) query = query.where('stix_id', 'in', [...filter.ids]);
  if (filter.types) query = query.where('object_type', 'in', [...filter.types]);
  if (!versions.all) {
    const only = [versions.first, versions.last, versions.modifiedMs.length > 0].filter(Boolean).length;
    if (only === 1 && versions.last) query = query.where('is_latest', '=', 1);
    else if (only === 1 && versions.first) query = query.where('is_first', '=', 1);
    else {
      query = query.where((eb) =>
        eb.or([
          ...(versions.first ? [eb('is_first', '=', 1)] : []),
          ...(versions.last ? [eb('is_latest', '=', 1)] : []),
          ...(versions.modifiedMs.length > 0 ? [eb('modified_ms', 'in', [...versions.modifiedMs])] : []),
        ]),
      );
    }
  }
  query = query.orderBy('date_added_us').limit(filter.take);
  if (filter.offset) query = query.offset(filter.offset);
  const rows = await query.execute();
  return rows.map((r) => ({
    stix_id: r.stix_id,
    object_type: r.object_type,
    date_added_us: Number(r.date_added_us),
    modified_ms: Number(r.modified_ms),
    object: r.object,
  }));
}

/** Whether any version of `stixId` exists. */
export async function objectExists(db: DbExecutor, stixId: string): Promise<boolean> {
  const row = await db
    .selectFrom('taxii_versions')
    .select('seq')
    .where('stix_id', '=', stixId)
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

/**
 * Deletes every version of every object whose newest version is revoked and was added before
 * `olderThanUs` (SPEC §4: revoked versions are kept 30 days). Returns the number of rows removed.
 */
export async function deleteRevokedBefore(db: DbExecutor, olderThanUs: number): Promise<number> {
  const result = await db
    .deleteFrom('taxii_versions')
    .where('stix_id', 'in', (eb) =>
      eb
        .selectFrom('taxii_versions as latest')
        .select('latest.stix_id')
        .where('latest.is_latest', '=', 1)
        .where('latest.revoked', '=', 1)
        .where('latest.date_added_us', '<', olderThanUs),
    )
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}

/** Updates the reputation row's STIX id (a revoked indicator is never re-used, STIX 2.1 §3.6). */
export async function replaceReputationStixId(tx: DbExecutor, ip: string, stixUuid: string): Promise<void> {
  await tx.updateTable('reputations').set({ stix_id: stixUuid }).where('ip', '=', ip).execute();
}

/**
 * Hands out `count` consecutive `date_added` values at once: exactly what `count` calls of
 * `allocateDateAdded(tx, nowUs)` would return, in one statement. Returns the first.
 */
export async function allocateDateAddedBlock(tx: DbExecutor, nowUs: number, count: number): Promise<number> {
  const row = await tx
    .updateTable('taxii_clock')
    .set({
      last_us: sql<number>`case when cast(${nowUs} as bigint) > last_us then cast(${nowUs} as bigint) + ${count - 1} else last_us + ${count} end`,
    })
    .where('id', '=', 1)
    .returning('last_us')
    .executeTakeFirstOrThrow();
  return Number(row.last_us) - count + 1;
}

/** `latestVersionForIp` for many IPs (IPs never published are absent), a few IN-list reads. */
export async function latestVersionsForIps(
  db: DbExecutor,
  ips: readonly string[],
): Promise<Map<string, TaxiiVersionRow>> {
  const out = new Map<string, TaxiiVersionRow>();
  for (let i = 0; i < ips.length; i += 500) {
    const rows = await db
      .selectFrom('taxii_versions')
      .selectAll()
      .where('ip', 'in', ips.slice(i, i + 500))
      .orderBy('ip')
      .orderBy('date_added_us', 'desc')
      .execute();
    for (const row of rows) if (row.ip !== null && !out.has(row.ip)) out.set(row.ip, row);
  }
  return out;
}

/**
 * `insertVersion` for many versions of distinct STIX ids, in order: one read of which ids already have a
 * newest version, one update clearing those flags, multi-row inserts. With `sqlite` (the raw connection
 * `tx` is on) it runs insertVersion's two statements per version as cached prepared statements instead.
 */
export async function insertVersions(
  tx: DbExecutor,
  versions: readonly NewVersion[],
  sqlite: BetterSqlite3.Database | null = null,
): Promise<void> {
  const had = new Set<string>();
  const ids = versions.map((v) => v.stixId);
  if (new Set(ids).size !== ids.length) throw new Error('insertVersions takes each STIX id once');
  if (sqlite) {
    const clear = sqliteStatement(
      sqlite,
      'update taxii_versions set is_latest = 0 where stix_id = ? and +is_latest = 1',
    );
    const insert = sqliteStatement(
      sqlite,
      `insert into taxii_versions (stix_id, object_type, ip, date_added_us, created_ms, modified_ms, confidence,
        revoked, is_first, is_latest, object) values (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)`,
    );
    for (const v of versions) {
      const hadPrevious = clear.run(v.stixId).changes > 0;
      insert.run(
        v.stixId,
        v.objectType,
        v.ip,
        v.dateAddedUs,
        v.createdMs,
        v.modifiedMs,
        v.confidence,
        v.revoked ? 1 : 0,
        hadPrevious ? 0 : 1,
        v.object,
      );
    }
    return;
  }
  for (let i = 0; i < ids.length; i += 500) {
    const part = ids.slice(i, i + 500);
    // Unary plus: see insertVersion.
    const rows = await tx
      .selectFrom('taxii_versions')
      .select('stix_id')
      .where('stix_id', 'in', part)
      .where(sql<number>`+is_latest`, '=', 1)
      .execute();
    for (const row of rows) had.add(row.stix_id);
    if (rows.length > 0) {
      await tx
        .updateTable('taxii_versions')
        .set({ is_latest: 0 })
        .where(
          'stix_id',
          'in',
          rows.map((r) => r.stix_id),
        )
        .where(sql<number>`+is_latest`, '=', 1)
        .execute();
    }
  }
  for (let i = 0; i < versions.length; i += 500) {
    await tx
      .insertInto('taxii_versions')
      .values(versions.slice(i, i + 500).map((version) => versionRow(version, !had.has(version.stixId))))
      .execute();
  }
}
