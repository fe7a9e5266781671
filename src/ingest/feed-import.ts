// `vakt import feed`: loads plain blocklists into one named feed with a trust weight (SPEC §1 feeds, §7, case 011).
import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { RangeSetBuilder } from '../core/cidr-aggregate.js';
import { type IntervalTable, IntervalTableBuilder } from '../core/interval-table.js';
import { type Cidr, cidrContains, cidrLastKey, parseCidr } from '../core/ip.js';
import type { Services } from '../services/services.js';
import type { FeedEntriesTable } from '../store/database.js';
import {
  deleteFeedEntries,
  feedValues,
  getFeed,
  insertFeedEntries,
  otherFeedRanges,
  saveFeed,
} from '../store/feed-repository.js';
import {
  existingReputations,
  insertNewReputations,
  lockIp,
  reputationIpsIn,
  touchReputation,
} from '../store/reputation-repository.js';
import { sqliteInsertRows } from '../store/sqlite-rows.js';
import { createFeedParser, type FeedEntry, feedRejections } from './feed-parser.js';

export type FeedKind = 'list' | 'tor';

export interface FeedImportOptions {
  /** Lower-case name shown in check responses, e.g. `blocklist_de`. */
  readonly name: string;
  /** Operator-set trust 0–1 (SPEC §5 item 3: each listing feed adds its weight; feeds alone ≤ 50). */
  readonly trust: number;
  /** `tor` marks a Tor exit list: it sets geolocation.isTor and adds no score. Default `list`. */
  readonly kind?: FeedKind;
}

export type FeedRejectionReason = 'malformed' | 'non_public' | 'unsupported' | 'allowlisted';

export interface FeedImportSummary {
  readonly feed: string;
  readonly files: number;
  /** Lines read, blank and comment lines included. */
  readonly read: number;
  /** Lines that gave a usable entry (duplicates across lines included). */
  readonly accepted: number;
  /** Lines refused, by reason. */
  readonly rejected: Record<FeedRejectionReason, number>;
  /** Blank and comment lines. */
  readonly ignored: number;
  /** Distinct entries the feed lists after this import. */
  readonly entries: number;
  readonly added: number;
  readonly removed: number;
  /** Reputation rows rescored (single addresses added or removed, or all of them on a trust change). */
  readonly rescored: number;
}

export type FeedImportProgress = (stage: string, done: number, total: number) => void;

export class FeedImportError extends Error {}

/** The columns of a new feed-only reputation row (SQLite bulk path; the other engine uses insertNewReputations). */
const NEW_ROW_COLUMNS = [
  'ip',
  'ip_key',
  'ip_version',
  'first_seen',
  'last_seen',
  'score',
  'score_raw',
  'score_updated_at',
  'country_code',
  'asn',
  'asn_org',
  'stix_id',
  'max_severity',
];
const NAME = /^[a-z0-9][a-z0-9_.-]{0,63}$/;
/** Entries written and rescored per transaction: big enough to amortise commits, small enough not to hold the write lock long. */
const BATCH = 2000;

/** Lines of a text or gzip file (detected by its magic bytes, not its name); CRLF tolerated. */
async function linesOf(path: string): Promise<AsyncIterable<string>> {
  const handle = await open(path, 'r');
  const magic = Buffer.alloc(2);
  try {
    await handle.read(magic, 0, 2, 0);
  } finally {
    await handle.close();
  }
  let input: Readable = createReadStream(path);
  if (magic[0] === 0x1f && magic[1] === 0x8b) input = input.pipe(createGunzip());
  return createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
}

function overlaps(a: Cidr, b: Cidr): boolean {
  return cidrContains(a, b.network.key) || cidrContains(b, a.network.key);
}

/** Other feeds' CIDR listings as one interval table per feed, so new rows are scored without a query each. */
async function otherFeedTables(
  db: Services['store']['db'],
  feed: string,
): Promise<{ trust: number; table: IntervalTable }[]> {
  const byFeed = new Map<string, { trust: number; builder: RangeSetBuilder }>();
  for (const range of await otherFeedRanges(db, feed)) {
    let entry = byFeed.get(range.name);
    if (!entry) {
      entry = { trust: range.trust, builder: new RangeSetBuilder() };
      byFeed.set(range.name, entry);
    }
    const v4 = range.startKey.subarray(0, 12).equals(Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255]));
    entry.builder.addKey(range.startKey, v4 ? range.prefix - 96 : range.prefix);
  }
  return [...byFeed.values()].map(({ trust, builder }) => {
    const set = builder.build();
    const table = new IntervalTableBuilder();
    for (let i = 0; i + 1 < set.v4.length; i += 2) table.addV4(set.v4[i] ?? 0, set.v4[i + 1] ?? 0, 0);
    for (let i = 0; i + 1 < set.v6.length; i += 2) table.addV6(set.v6[i] ?? 0n, set.v6[i + 1] ?? 0n, 0);
    return { trust, table: table.build() };
  });
}

/** A listing to write: its canonical value, parsed again when its batch is written (see importFeed). */
type Listing = Pick<FeedEntry, 'value' | 'kind' | 'cidr'>;

function listingOf(value: string): Listing {
  const parsed = parseCidr(value);
  if (!parsed.ok) throw new Error(`feed value is not canonical: ${value}`);
  return { value, kind: value.includes('/') ? 'cidr' : 'ip', cidr: parsed.cidr };
}

function entryRow(feed: string, entry: Listing, listedAt: number): FeedEntriesTable {
  return {
    feed,
    value: entry.value,
    start_key: entry.cidr.network.key,
    end_key: cidrLastKey(entry.cidr),
    prefix: entry.cidr.keyPrefixLength,
    single: entry.kind === 'ip' ? 1 : 0,
    listed_at: listedAt,
  };
}

/**
 * Imports `files` as the complete current listing of feed `options.name`: new entries are added (listed
 * now), entries no longer present are removed, entries still present keep their first listing time.
 * Importing the same files again therefore changes nothing. Only single addresses create reputation rows
 * and are rescored; CIDR entries are stored and count at check time for every address inside them (a /16
 * must not create 65,536 rows), and the addresses inside them that have a row are rescored. Operator-allowlisted entries are refused (SPEC §1).
 */
export async function importFeed(
  services: Services,
  files: readonly string[],
  options: FeedImportOptions,
  progress: FeedImportProgress = () => {},
): Promise<FeedImportSummary> {
  const { store, config, clock, scorer, geo } = services;
  if (!NAME.test(options.name)) {
    throw new FeedImportError('a feed name is 1-64 lower-case letters, digits, "_", "-" or "."');
  }
  if (!Number.isFinite(options.trust) || options.trust < 0 || options.trust > 1) {
    throw new FeedImportError('--trust is a number from 0 to 1');
  }
  if (files.length === 0) throw new FeedImportError('name at least one file to import');
  const kind = options.kind ?? 'list';
  const trust = kind === 'tor' ? 0 : options.trust;

  let read = 0;
  let accepted = 0;
  let ignored = 0;
  const rejected: Record<FeedRejectionReason, number> = {
    malformed: 0,
    non_public: 0,
    unsupported: 0,
    allowlisted: 0,
  };
  // Only the canonical values are kept (a parsed entry with its 16-byte keys weighs ~10× more; 552k of
  // them took most of a 1.4 GB peak); each batch parses its values again when it is written.
  const entries = new Set<string>();
  for (const file of files) {
    const parser = createFeedParser();
    for await (const line of await linesOf(file)) {
      const entry = parser.push(line);
      if (entry === null) continue;
      if (config.allowlist.some((cidr) => overlaps(cidr, entry.cidr))) {
        rejected.allowlisted++;
        parser.tally.accepted--;
        continue;
      }
      entries.add(entry.value);
    }
    const reasons = feedRejections(parser.tally);
    rejected.malformed += reasons.malformed.count;
    rejected.non_public += reasons.non_public.count;
    rejected.unsupported += reasons.unsupported.count;
    read += parser.tally.lines;
    accepted += parser.tally.accepted;
    ignored += parser.tally.ignored;
    progress('read', read, 0);
  }

  const now = clock.now();
  const previous = await getFeed(store.db, options.name);
  const existing = await feedValues(store.db, options.name);
  const toAdd = [...entries].filter((value) => !existing.has(value));
  const toRemove = [...existing].filter((value) => !entries.has(value));
  const trustChanged = previous !== undefined && (previous.trust !== trust || previous.kind !== kind);
  const unchanged = previous !== undefined && !trustChanged && toAdd.length === 0 && toRemove.length === 0;

  const summary = (rescored: number): FeedImportSummary => ({
    feed: options.name,
    files: files.length,
    read,
    accepted,
    rejected,
    ignored,
    entries: entries.size,
    added: toAdd.length,
    removed: toRemove.length,
    rescored,
  });
  if (unchanged) return summary(0);

  // Addresses to create rows for and/or rescore; a trust change rescores everything the feed lists.
  const rescoreSingles = new Set<string>();
  if (trustChanged) for (const value of entries) if (!value.includes('/')) rescoreSingles.add(value);
  for (const value of toRemove) if (!value.includes('/')) rescoreSingles.add(value);

  await store.transaction(async (tx) => {
    await saveFeed(tx, { name: options.name, trust, kind, importedAt: now, entries: entries.size });
  });
  const rescore = async (tx: Parameters<Parameters<typeof store.transaction>[0]>[0], ip: string) => {
    await lockIp(tx, store.dialect, ip);
    await scorer.rescore(tx, ip, now);
  };

  const others = await otherFeedTables(store.db, options.name);
  let done = 0;
  let rescored = 0;
  for (let i = 0; i < toAdd.length; i += BATCH) {
    const batch = toAdd.slice(i, i + BATCH).map(listingOf);
    await store.transaction(async (tx) => {
      await insertFeedEntries(
        tx,
        batch.map((entry) => entryRow(options.name, entry, now)),
        store.sqlite,
      );
      const singles = batch.filter((entry) => entry.kind === 'ip').map((entry) => entry.cidr.network);
      const existingRows = await existingReputations(
        tx,
        singles.map((ip) => ip.text),
      );
      // Addresses with a row already carry other evidence: the full rescore. New ones hold feed
      // evidence only (this feed plus other feeds' CIDRs), scored in memory and inserted in bulk.
      const fresh = [];
      for (const ip of singles) {
        rescoreSingles.delete(ip.text);
        rescored++;
        if (existingRows.has(ip.text)) {
          await lockIp(tx, store.dialect, ip.text);
          await touchReputation(tx, ip, now, now, geo.lookup(ip));
          await scorer.rescore(tx, ip.text, now);
          continue;
        }
        const feeds = [{ trust }, ...others.filter((o) => o.table.find(ip.key) >= 0)];
        const scored = kind === 'tor' ? { score: 0, raw: 0 } : scorer.scoreFeedOnly(ip, feeds);
        const info = geo.lookup(ip);
        fresh.push({
          ip: ip.text,
          ip_key: ip.key,
          ip_version: ip.version,
          first_seen: now,
          last_seen: now,
          score: scored.score,
          score_raw: scored.raw,
          score_updated_at: now,
          country_code: info.countryCode,
          asn: info.asn,
          asn_org: info.asnOrg,
          stix_id: randomUUID(),
          max_severity: 0,
        });
      }
      if (store.sqlite)
        sqliteInsertRows(store.sqlite, 'reputations', NEW_ROW_COLUMNS, 'on conflict (ip) do nothing', fresh);
      else await insertNewReputations(tx, fresh);
      for (const row of fresh) {
        await scorer.notify(
          tx,
          {
            ...row,
            sessions: 0,
            events: 0,
            report_count: 0,
            distinct_reporters: 0,
            contributor_weight: 0,
            sensor_first_seen: null,
            sensor_last_seen: null,
            last_reported_at: null,
          },
          0,
          now,
        );
      }
    });
    done += batch.length;
    progress('add', done, toAdd.length);
  }
  for (let i = 0; i < toRemove.length; i += BATCH) {
    await store.transaction(async (tx) => deleteFeedEntries(tx, options.name, toRemove.slice(i, i + BATCH)));
  }
  // A CIDR listing added or removed (every one of the feed's on a trust change) changes the stored score of
  // each address with a row inside it: rescored here too, so that check, blacklist and TAXII agree.
  for (const value of trustChanged ? [...entries, ...toRemove] : [...toAdd, ...toRemove]) {
    if (!value.includes('/')) continue;
    for (const ip of await reputationIpsIn(store.db, listingOf(value).cidr)) {
      rescoreSingles.add(ip);
    }
  }
  const pending = [...rescoreSingles];
  for (let i = 0; i < pending.length; i += BATCH) {
    await store.transaction(async (tx) => {
      for (const ip of pending.slice(i, i + BATCH)) await rescore(tx, ip);
    });
    rescored += Math.min(BATCH, pending.length - i);
  }
  // CIDR listings change checks of addresses that have no reputation row: drop every cached answer.
  services.scorer.forgetFeeds();
  services.reputation.invalidateAll();
  return summary(rescored);
}
