// Imported feeds and their listings (SPEC §1 feed evidence): snapshots per feed, looked up by address.
import type BetterSqlite3 from 'better-sqlite3';
import { maskKey } from '../core/ip.js';
import type { DbExecutor, FeedEntriesTable } from './database.js';
import { sqliteInsertRows } from './sqlite-rows.js';

export interface FeedRecord {
  readonly name: string;
  readonly trust: number;
  readonly kind: string;
  readonly importedAt: number;
  readonly entries: number;
}

export interface FeedListing {
  readonly name: string;
  readonly trust: number;
  readonly kind: string;
  readonly listedAt: number;
}

/** Rows per multi-row statement: well under SQLite's 32,766 bound parameters and PostgreSQL's 65,535. */
const BATCH = 1000;

export async function getFeed(db: DbExecutor, name: string): Promise<FeedRecord | undefined> {
  const row = await db.selectFrom('feeds').selectAll().where('name', '=', name).executeTakeFirst();
  return row
    ? {
        name: row.name,
        trust: Number(row.trust),
        kind: row.kind,
        importedAt: Number(row.imported_at),
        entries: Number(row.entries),
      }
    : undefined;
}

export async function listFeeds(db: DbExecutor): Promise<FeedRecord[]> {
  const rows = await db.selectFrom('feeds').selectAll().orderBy('name').execute();
  return rows.map((row) => ({
    name: row.name,
    trust: Number(row.trust),
    kind: row.kind,
    importedAt: Number(row.imported_at),
    entries: Number(row.entries),
  }));
}

export async function saveFeed(tx: DbExecutor, feed: FeedRecord): Promise<void> {
  const values = {
    name: feed.name,
    trust: feed.trust,
    kind: feed.kind,
    imported_at: feed.importedAt,
    entries: feed.entries,
  };
  await tx
    .insertInto('feeds')
    .values(values)
    .onConflict((oc) =>
      oc.column('name').doUpdateSet({
        trust: values.trust,
        kind: values.kind,
        imported_at: values.imported_at,
        entries: values.entries,
      }),
    )
    .execute();
}

/** Every value (canonical address or CIDR text) the feed lists now. */
export async function feedValues(db: DbExecutor, feed: string): Promise<Set<string>> {
  const rows = await db.selectFrom('feed_entries').select('value').where('feed', '=', feed).execute();
  return new Set(rows.map((r) => r.value));
}

export async function insertFeedEntries(
  tx: DbExecutor,
  rows: readonly FeedEntriesTable[],
  sqlite: BetterSqlite3.Database | null = null,
): Promise<void> {
  if (sqlite) {
    // The caller's transaction is on this same connection: prepared once, no query building per chunk.
    const columns = ['feed', 'value', 'start_key', 'end_key', 'prefix', 'single', 'listed_at'];
    sqliteInsertRows(sqlite, 'feed_entries', columns, 'on conflict (feed, value) do nothing', rows as never);
    return;
  }
  for (let i = 0; i < rows.length; i += BATCH) {
    await tx
      .insertInto('feed_entries')
      .values(rows.slice(i, i + BATCH))
      .onConflict((oc) => oc.columns(['feed', 'value']).doNothing())
      .execute();
  }
}

export async function deleteFeedEntries(
  tx: DbExecutor,
  feed: string,
  values: readonly string[],
): Promise<void> {
  for (let i = 0; i < values.length; i += BATCH) {
    await tx
      .deleteFrom('feed_entries')
      .where('feed', '=', feed)
      .where('value', 'in', values.slice(i, i + BATCH))
      .execute();
  }
}

/**
 * Every feed listing that covers the address with 16-byte `key`: the address itself or any CIDR holding
 * it. Each covering entry starts at the key masked to its prefix, so one indexed `in` over the ≤ 33
 * (IPv4) or ≤ 129 (IPv6) masked keys finds them all; the prefix check drops same-start wider/narrower rows.
 */
export async function feedListingsFor(db: DbExecutor, key: Buffer, version: 4 | 6): Promise<FeedListing[]> {
  const first = version === 4 ? 96 : 0;
  const masks = new Map<string, Buffer>();
  for (let prefix = first; prefix <= 128; prefix++) {
    const masked = maskKey(key, prefix);
    masks.set(masked.toString('hex'), masked);
  }
  const rows = await db
    .selectFrom('feed_entries')
    .innerJoin('feeds', 'feeds.name', 'feed_entries.feed')
    .select([
      'feeds.name as name',
      'feeds.trust as trust',
      'feeds.kind as kind',
      'feed_entries.listed_at as listed_at',
      'feed_entries.start_key as start_key',
      'feed_entries.prefix as prefix',
    ])
    .where('feed_entries.start_key', 'in', [...masks.values()])
    .execute();
  const byFeed = new Map<string, FeedListing>();
  for (const row of rows) {
    if (!maskKey(key, row.prefix).equals(Buffer.from(row.start_key))) continue;
    const listedAt = Number(row.listed_at);
    const existing = byFeed.get(row.name);
    if (existing && existing.listedAt <= listedAt) continue;
    byFeed.set(row.name, { name: row.name, trust: Number(row.trust), kind: row.kind, listedAt });
  }
  return [...byFeed.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/** CIDR (not single-address) listings of scoring feeds (Tor exit lists add no score), with feed name and trust. */
function scoringFeedRanges(db: DbExecutor) {
  return db
    .selectFrom('feed_entries')
    .innerJoin('feeds', 'feeds.name', 'feed_entries.feed')
    .select(['feeds.name as name', 'feeds.trust as trust'])
    .where('feed_entries.single', '=', 0)
    .where('feeds.kind', '!=', 'tor');
}

/** True when any scoring feed lists a CIDR (addresses without a reputation row may then still score). */
export async function anyFeedRanges(db: DbExecutor): Promise<boolean> {
  return (await scoringFeedRanges(db).limit(1).executeTakeFirst()) !== undefined;
}

/** The CIDR (not single-address) entries of every scoring feed except `feed`, with each feed's trust. */
export async function otherFeedRanges(
  db: DbExecutor,
  feed: string,
): Promise<{ name: string; trust: number; startKey: Buffer; prefix: number }[]> {
  const rows = await scoringFeedRanges(db)
    .select(['feed_entries.start_key as start_key', 'feed_entries.prefix as prefix'])
    .where('feeds.name', '!=', feed)
    .execute();
  return rows.map((r) => ({
    name: r.name,
    trust: Number(r.trust),
    startKey: Buffer.from(r.start_key),
    prefix: r.prefix,
  }));
}

/** One CIDR listing of a scoring feed (not Tor), as the blacklist reads them (decision 0703). */
export interface FeedRangeListing {
  readonly feed: string;
  readonly trust: number;
  readonly startKey: Buffer;
  readonly endKey: Buffer;
  readonly listedAt: number;
}

/**
 * Every CIDR (not single-address) listing of every scoring feed (Tor exit lists excluded: they add no
 * score), in start-key order. Read through `feed_entries_single_idx`, so single-address listings cost nothing.
 */
export async function feedRangeListings(db: DbExecutor): Promise<FeedRangeListing[]> {
  const rows = await scoringFeedRanges(db)
    .select([
      'feed_entries.start_key as start_key',
      'feed_entries.end_key as end_key',
      'feed_entries.listed_at as listed_at',
    ])
    .orderBy('feed_entries.start_key')
    .orderBy('feeds.name')
    .execute();
  return rows.map((r) => ({
    feed: r.name,
    trust: Number(r.trust),
    startKey: Buffer.from(r.start_key),
    endKey: Buffer.from(r.end_key),
    listedAt: Number(r.listed_at),
  }));
}
