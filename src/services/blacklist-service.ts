// Blacklist generation (SPEC §3.2): snapshot, count and ETag before charging, then a streamed, optionally aggregated list.
import { createHash } from 'node:crypto';
import { AddressLines, type BlacklistEntry, type BlacklistFormat } from '../core/blacklist-format.js';
import {
  cidrLineChunks,
  forEachCidr,
  RangeLookup,
  type RangeSet,
  RangeSetBuilder,
  subtractRanges,
} from '../core/cidr-aggregate.js';
import { type FeedRange, feedSegments } from '../core/feed-segments.js';
import { keyToBigInt } from '../core/interval-table.js';
import { type Cidr, cidrLastKey, ipFromKey, parseIp } from '../core/ip.js';
import {
  type AddressPage,
  type BlacklistFilter,
  type BlacklistFingerprint,
  type BlacklistRow,
  type BlacklistSchema,
  blacklistFingerprint,
  blacklistPages,
  detectBlacklistSchema,
  type Keyset,
  type ListWindow,
  protocolsFor,
  qualifiesBeyond,
  rowsBefore,
  sqliteAddressPages,
} from '../store/blacklist-repository.js';
import type { DbExecutor } from '../store/database.js';
import { feedRangeListings } from '../store/feed-repository.js';
import type { ReadSnapshot, Store } from '../store/store.js';
import type { BenignSources } from './benign-sources.js';
import type { GeoLookup } from './geo-lookup.js';
import type { ReputationScorer } from './reputation-scoring.js';

export type { BlacklistFilter } from '../store/blacklist-repository.js';

/** Everything that shapes the list's content (what the ETag covers besides the data). */
export interface BlacklistParams extends Omit<BlacklistFilter, 'excludedKeyRanges'> {
  /** The caller's `limit`, or null for "as many as allowed". */
  readonly requestedLimit: number | null;
  readonly aggregate: boolean;
  /** Output format name; part of the ETag so that formats never share one. */
  readonly format: BlacklistFormat;
}

/**
 * An open, consistent view of one blacklist request. `etagFor(n)` is the strong ETag of the list cut to
 * `n` addresses; `entries(n)` streams those. Call `release()` exactly once (entries() does it at its end).
 */
export interface BlacklistSession {
  /** Addresses the list holds at the tier cap and the caller's limit (before today's remainder). */
  readonly count: number;
  /** The cap before the remainder: min(limit, tier cap), or null when neither applies. */
  readonly limit: number | null;
  /** True when more addresses qualify than `limit` allowed and the tier cap (not the caller) set it. */
  readonly cutByTierCap: boolean;
  etagFor(count: number): Promise<string>;
  entries(count: number): AsyncGenerator<BlacklistEntry[] | AddressLines>;
  release(): Promise<void>;
}

const ETAG_VERSION = 1;
const PAGE_SIZE = 5000;
// Address-only pages (one string per row) can be larger: 20,000 addresses are about 300 kB of text.
const ADDRESS_PAGE_SIZE = 20_000;
// aggregate=true holds the whole list in its range set anyway; its reads take pages 5× as large (~1.5 MB
// of text), because each page's keyset start skips the rows of its score already read (20k pages made
// the 350k read ~40 % slower than one statement; 100k pages ~15 %).
const AGGREGATE_PAGE_FACTOR = 5;

function keyRange(cidr: Cidr): { first: Buffer; last: Buffer } {
  return { first: cidr.network.key, last: cidrLastKey(cidr) };
}

export interface BlacklistServiceOptions {
  /** Read SQLite snapshots with raw prepared statements (default true); false keeps every read on Kysely. */
  readonly rawSqlite?: boolean;
  /** Rows per page of address-only reads (default 20,000); tests use small pages to cross boundaries. */
  readonly addressPageSize?: number;
  /**
   * What scores feed CIDR listings the way a check scores an address inside them (decision 0703).
   * Without it the list holds reputation rows only.
   */
  readonly feeds?: {
    readonly scorer: ReputationScorer;
    readonly benign: BenignSources;
    readonly geo: GeoLookup;
  };
  /** Bulk rows this process accepted and has not applied yet (decision 0853): applied before a list. */
  readonly pending?: { settle(): Promise<void> };
}

/**
 * One qualifying feed CIDR entry of a list (decision 0703): a CIDR every address of which a check scores
 * at least `score` from feed listings alone. `first`/`last` are 128-bit keys (IPv4 mapped).
 */
export interface FeedCidrEntry {
  readonly text: string;
  readonly version: 4 | 6;
  readonly first: bigint;
  readonly last: bigint;
  readonly score: number;
  /** The newest of the listing feeds' listed_at (as a check's lastSeen). */
  readonly lastSeen: number;
  readonly countryCode: string | null;
  readonly asn: string | null;
  readonly asnOrg: string | null;
}

const V4_MAPPED_BASE = 0xffffn << 32n;

/** What a list's ETag is made of besides its parameters (see #fingerprint). */
type ListFingerprint = BlacklistFingerprint | { readonly count: number; readonly listDigest: string };

export class BlacklistService {
  #schema: Promise<BlacklistSchema> | null = null;
  readonly #excluded: { first: Buffer; last: Buffer }[];
  readonly #allowlistText: string;

  readonly #rawSqlite: boolean;
  readonly #addressPageSize: number;
  readonly #aggregatePageSize: number;
  readonly #feeds: BlacklistServiceOptions['feeds'];
  readonly #allowlistSet: RangeSet;
  readonly #pending: BlacklistServiceOptions['pending'];

  constructor(
    private readonly store: Store,
    allowlist: readonly Cidr[],
    options: BlacklistServiceOptions = {},
  ) {
    this.#rawSqlite = options.rawSqlite ?? true;
    this.#addressPageSize = options.addressPageSize ?? ADDRESS_PAGE_SIZE;
    this.#aggregatePageSize = this.#addressPageSize * AGGREGATE_PAGE_FACTOR;
    this.#excluded = allowlist.map(keyRange);
    this.#allowlistText = allowlist.map((c) => c.text).join(',');
    this.#feeds = options.feeds;
    this.#pending = options.pending;
    const allowed = new RangeSetBuilder();
    for (const cidr of allowlist) allowed.addCidr(cidr);
    this.#allowlistSet = allowed.build();
  }

  /** Detected lazily, once: whether the evidence columns exist (see BlacklistSchema). */
  schema(): Promise<BlacklistSchema> {
    if (!this.#schema) {
      this.#schema = detectBlacklistSchema(this.store.db).catch((error) => {
        this.#schema = null;
        throw error;
      });
    }
    return this.#schema;
  }

  /** Forgets the detected schema (after a migration in the same process, and in tests). */
  resetSchema(): void {
    this.#schema = null;
  }

  /**
   * Opens a snapshot and counts the list at min(requested limit, tier cap). `tierCap` null = unlimited.
   * The caller charges quota for the count it decides to send, then streams `entries(n)`. `readAhead`
   * (the caller expects to send the list, e.g. no If-None-Match): aggregate=true of an address-only
   * format reads the list once for both the ETag and the range set (SQLite).
   */
  async open(
    params: BlacklistParams,
    tierCap: number | null,
    options: { readonly readAhead?: boolean } = {},
  ): Promise<BlacklistSession> {
    // Bulk rows this process acknowledged are in the list it answers with (decision 0853).
    await this.#pending?.settle();
    const schema = await this.schema();
    const filter: BlacklistFilter = { ...params, excludedKeyRanges: this.#excluded };
    const limits = [params.requestedLimit, tierCap].filter((n): n is number => n !== null);
    const limit = limits.length > 0 ? Math.min(...limits) : null;
    const snapshot = await this.store.readSnapshot();
    let released = false;
    const release = async () => {
      if (released) return;
      released = true;
      await snapshot.release();
    };
    const details = params.format === 'json' || params.format === 'csv';
    try {
      // aggregate=true of an address-only format holds the whole range set before it writes a line, so
      // (on SQLite, when asked) one read builds it and the fingerprint together; a 304 then costs that read.
      const readAhead =
        (options.readAhead ?? false) &&
        params.aggregate &&
        !details &&
        snapshot.sqlite !== null &&
        this.#rawSqlite;
      const feedCidrs = await this.feedCidrs(snapshot.db, params);
      if (feedCidrs.length > 0) {
        return await this.#openWithFeedCidrs(params, filter, schema, snapshot, limit, tierCap, {
          readAhead,
          details,
          feedCidrs,
          release,
        });
      }
      let prebuilt: { count: number; set: RangeSet } | null = null;
      let full: ListFingerprint;
      if (readAhead) {
        const read = await this.#readAhead(snapshot, filter, schema, limit ?? Number.MAX_SAFE_INTEGER);
        full = read.fingerprint;
        prebuilt = { count: read.fingerprint.count, set: read.builder.build() };
      } else {
        full = await this.#fingerprint(
          snapshot,
          filter,
          schema,
          limit ?? Number.MAX_SAFE_INTEGER,
          details,
          params.aggregate,
        );
      }
      const cutByTierCap =
        tierCap !== null &&
        limit === tierCap &&
        (params.requestedLimit === null || params.requestedLimit > tierCap) &&
        full.count === tierCap &&
        (await qualifiesBeyond(snapshot.db, filter, schema, tierCap));
      const fingerprints = new Map<number, ListFingerprint>([[full.count, full]]);
      const etagFor = async (count: number) => {
        let fingerprint = fingerprints.get(count);
        if (!fingerprint) {
          fingerprint = await this.#fingerprint(snapshot, filter, schema, count, details, params.aggregate);
          fingerprints.set(count, fingerprint);
        }
        return this.#etag(params, fingerprint);
      };
      return {
        count: full.count,
        limit,
        cutByTierCap,
        etagFor,
        entries: (count) =>
          prebuilt && prebuilt.count === count
            ? this.#prebuiltEntries(prebuilt.set, release)
            : this.#entries(snapshot, filter, schema, params.aggregate, details, count, release),
        release,
      };
    } catch (error) {
      await release();
      throw error;
    }
  }

  // Strong ETag: the parameters that shape the output plus aggregates of exactly the listed rows
  // (count, newest score change and sighting, Σscore, Σsessions, Σ enrichment text length). Any
  // rescore, new sighting, listing or delisting in the window changes one of them (decision 0801).
  // aggregate=true of an address-only format on SQLite: the digest of the listed addresses instead
  // (decision 0854), which changes exactly when the output can.
  #etag(params: BlacklistParams, fingerprint: ListFingerprint, feedDigest?: string): string {
    const hash = createHash('sha256')
      .update(
        JSON.stringify([
          ETAG_VERSION,
          params.format,
          params.aggregate,
          params.scoreMinimum,
          params.ignoreWhitelist,
          params.ipVersion,
          params.onlyCountries,
          params.exceptCountries,
          params.onlyAsn,
          params.exceptAsn,
          params.protocols,
          params.minSeverity,
          this.#allowlistText,
          fingerprint,
          // Only lists holding feed CIDR entries carry this, so row-only ETags are unchanged.
          ...(feedDigest === undefined ? [] : [feedDigest]),
        ]),
      )
      .digest('base64url');
    return `"${hash.slice(0, 32)}"`;
  }

  /**
   * The qualifying feed CIDR entries of a list, in list order (score desc, lastSeen desc, then address):
   * the address space the scoring feeds' CIDR listings cover, cut into segments with one set of listing
   * feeds (and one whitelist answer) each, scored as a check scores an address there (feed listings,
   * whitelist factor unless ignoreWhitelist), kept when the score meets scoreMinimum, minus the
   * allowlist, written as the minimal CIDR cover, each CIDR filtered by the country/ASN of its first
   * address. Empty when evidence filters (protocols, minSeverity > 0) apply: feeds carry neither.
   */
  async feedCidrs(db: DbExecutor, params: BlacklistParams): Promise<FeedCidrEntry[]> {
    const feeds = this.#feeds;
    if (!feeds || params.protocols !== null || (params.minSeverity !== null && params.minSeverity > 0)) {
      return [];
    }
    const listings = await feedRangeListings(db);
    if (listings.length === 0) return [];
    const ranges: FeedRange[] = listings.map((l) => ({
      feed: l.feed,
      trust: l.trust,
      first: keyToBigInt(l.startKey),
      last: keyToBigInt(l.endKey),
      listedAt: l.listedAt,
    }));
    const cuts = params.ignoreWhitelist ? [] : (feeds.benign.boundaries?.() ?? []);
    // Qualifying segments, adjacent ones with the same score and lastSeen joined.
    const runs: { first: bigint; last: bigint; version: 4 | 6; score: number; lastSeen: number }[] = [];
    for (const segment of feedSegments(ranges, cuts)) {
      const version = segment.first >> 32n === 0xffffn ? 4 : 6;
      if (params.ipVersion !== null && params.ipVersion !== version) continue;
      const ip = keyAddress(segment.first);
      const score = feeds.scorer.scoreFeeds(ip, segment.feeds, params.ignoreWhitelist).confidenceLevel;
      if (score < params.scoreMinimum) continue;
      const lastSeen = Math.max(...segment.feeds.map((f) => f.listedAt));
      const previous = runs[runs.length - 1];
      if (
        previous &&
        previous.last + 1n === segment.first &&
        previous.version === version &&
        previous.score === score &&
        previous.lastSeen === lastSeen
      ) {
        previous.last = segment.last;
      } else {
        runs.push({ first: segment.first, last: segment.last, version, score, lastSeen });
      }
    }
    const out: FeedCidrEntry[] = [];
    for (const run of runs) {
      const set: RangeSet =
        run.version === 4
          ? {
              v4: Float64Array.of(Number(run.first - V4_MAPPED_BASE), Number(run.last - V4_MAPPED_BASE)),
              v6: [],
            }
          : { v4: new Float64Array(0), v6: [run.first, run.last] };
      forEachCidr(subtractRanges(set, this.#allowlistSet), (text, address, prefixLength, version) => {
        const parsed = parseIp(address);
        if (!parsed.ok) return;
        const geo = feeds.geo.lookup(parsed.ip);
        if (!geoPasses(params, geo.countryCode, geo.asn)) return;
        const first = keyToBigInt(parsed.ip.key);
        const hostBits = BigInt((version === 4 ? 32 : 128) - prefixLength);
        out.push({
          text,
          version,
          first,
          last: first + (1n << hostBits) - 1n,
          score: run.score,
          lastSeen: run.lastSeen,
          countryCode: geo.countryCode,
          asn: geo.asn,
          asnOrg: geo.asnOrg,
        });
      });
    }
    return out.sort(
      (a, b) =>
        b.score - a.score || b.lastSeen - a.lastSeen || (a.first < b.first ? -1 : a.first > b.first ? 1 : 0),
    );
  }

  /**
   * `open` for a list that holds feed CIDR entries (decision 0703). Units: every listed row and every
   * feed CIDR entry is one. The entries sit in list order among the rows (a CIDR before rows of equal
   * score and lastSeen); the first `n` units are `cut(n)`: the first k entries and the first `rows` rows.
   * Rows inside an included entry are counted but written only through it (no overlapping output).
   */
  async #openWithFeedCidrs(
    params: BlacklistParams,
    filter: BlacklistFilter,
    schema: BlacklistSchema,
    snapshot: ReadSnapshot,
    limit: number | null,
    tierCap: number | null,
    context: {
      readonly readAhead: boolean;
      readonly details: boolean;
      readonly feedCidrs: readonly FeedCidrEntry[];
      readonly release: () => Promise<void>;
    },
  ): Promise<BlacklistSession> {
    const { readAhead, details, feedCidrs, release } = context;
    const total = feedCidrs.length;
    const rowLimit = limit ?? Number.MAX_SAFE_INTEGER;
    const rowFingerprints = new Map<number, ListFingerprint>();
    let prebuilt: { count: number; set: RangeSet } | null = null;
    let rowsListed: number;
    if (readAhead && snapshot.sqlite) {
      const read = await this.#readAhead(snapshot, filter, schema, rowLimit);
      rowFingerprints.set(read.fingerprint.count, read.fingerprint);
      rowsListed = read.fingerprint.count;
      if (rowsListed + total <= rowLimit) {
        for (const entry of feedCidrs) read.builder.add(entry.text);
        prebuilt = { count: rowsListed + total, set: read.builder.build() };
      }
    } else {
      const fingerprint = await this.#fingerprint(
        snapshot,
        filter,
        schema,
        rowLimit,
        details,
        params.aggregate,
      );
      rowFingerprints.set(fingerprint.count, fingerprint);
      rowsListed = fingerprint.count;
    }
    // rowsListed = min(rows that qualify, limit); every unit count below is ≤ limit.
    const count = Math.min(rowLimit, rowsListed + total);
    const cuts = new Map<number, { k: number; rows: number }>();
    const cut = async (n: number) => {
      let known = cuts.get(n);
      if (known) return known;
      if (rowsListed + total <= n) {
        known = { k: total, rows: rowsListed };
      } else {
        // Entry j sits at place j + (rows before it); places grow with j, so the included entries are a
        // prefix: binary search for the first one at place ≥ n.
        let low = 0;
        let high = total;
        while (low < high) {
          const mid = (low + high) >> 1;
          const entry = feedCidrs[mid];
          const before = entry
            ? await rowsBefore(
                snapshot.db,
                filter,
                schema,
                { score: entry.score, lastSeen: entry.lastSeen },
                n,
              )
            : n;
          if (mid + before < n) low = mid + 1;
          else high = mid;
        }
        known = { k: low, rows: Math.min(rowsListed, n - low) };
      }
      cuts.set(n, known);
      return known;
    };
    const cutByTierCap =
      tierCap !== null &&
      limit === tierCap &&
      (params.requestedLimit === null || params.requestedLimit > tierCap) &&
      count === tierCap &&
      (rowsListed + total > tierCap ||
        (rowsListed === tierCap && (await qualifiesBeyond(snapshot.db, filter, schema, tierCap))));
    const digests = new Map<number, string>();
    const etagFor = async (n: number) => {
      const { k, rows } = await cut(n);
      let fingerprint = rowFingerprints.get(rows);
      if (!fingerprint) {
        fingerprint = await this.#fingerprint(snapshot, filter, schema, rows, details, params.aggregate);
        rowFingerprints.set(rows, fingerprint);
      }
      let digest = digests.get(k);
      if (digest === undefined) {
        const hash = createHash('sha256');
        for (const entry of feedCidrs.slice(0, k)) {
          hash.update(
            JSON.stringify([
              entry.text,
              entry.score,
              entry.lastSeen,
              entry.countryCode,
              entry.asn,
              entry.asnOrg,
            ]),
          );
        }
        digest = `${k}:${hash.digest('base64url')}`;
        digests.set(k, digest);
      }
      return this.#etag(params, fingerprint, digest);
    };
    const entries = async function* (
      this: BlacklistService,
      n: number,
    ): AsyncGenerator<BlacklistEntry[] | AddressLines> {
      if (prebuilt && prebuilt.count === n) {
        yield* this.#prebuiltEntries(prebuilt.set, release);
        return;
      }
      try {
        const { k, rows } = await cut(n);
        yield* this.#entriesWithFeedCidrs(
          snapshot,
          filter,
          schema,
          params.aggregate,
          details,
          rows,
          feedCidrs.slice(0, k),
        );
      } finally {
        await release();
      }
    };
    return {
      count,
      limit,
      cutByTierCap,
      etagFor,
      entries: (n) => entries.call(this, n),
      release,
    };
  }

  /**
   * The fingerprint the ETag of the first `count` rows is made of. aggregate=true of an address-only
   * format: a digest of the listed addresses' text, which is all the output depends on (it is the set the
   * range set is built from), read from the list index's address column alone — on SQLite the aggregates
   * of score and last-seen cost a third more than the addresses themselves at 350k rows (decision 0854).
   * Every other list: the aggregates of the listed rows (blacklistFingerprint).
   */
  async #fingerprint(
    snapshot: ReadSnapshot,
    filter: BlacklistFilter,
    schema: BlacklistSchema,
    count: number,
    details: boolean,
    aggregate: boolean,
  ): Promise<ListFingerprint> {
    if (!aggregate || details) return blacklistFingerprint(snapshot.db, filter, schema, count, !details);
    return this.#readAddresses(snapshot, filter, schema, count, null);
  }

  /** Reads the first `limit` rows' addresses into a range set and their address-list digest. */
  async #readAhead(
    snapshot: ReadSnapshot,
    filter: BlacklistFilter,
    schema: BlacklistSchema,
    limit: number,
  ): Promise<{ builder: RangeSetBuilder; fingerprint: ListFingerprint }> {
    const builder = new RangeSetBuilder();
    return { builder, fingerprint: await this.#readAddresses(snapshot, filter, schema, limit, builder) };
  }

  /**
   * One read of the first `limit` rows' addresses (list index only): their digest — SHA-256 of every
   * address followed by a newline, in list order, so neither the page size nor the path (raw SQLite or
   * Kysely) matters — and, given a builder, the range set.
   */
  async #readAddresses(
    snapshot: ReadSnapshot,
    filter: BlacklistFilter,
    schema: BlacklistSchema,
    limit: number,
    builder: RangeSetBuilder | null,
  ): Promise<ListFingerprint> {
    const hash = createHash('sha256');
    let count = 0;
    for await (const page of this.#addressPages(snapshot, filter, schema, limit, this.#aggregatePageSize)) {
      hash.update(page.text);
      hash.update('\n');
      builder?.addLines(page.text);
      count += page.count;
    }
    return { count, listDigest: hash.digest('base64url') };
  }

  /**
   * The first `rows` rows and the included feed CIDR entries, in list order. Aggregated: one range set
   * of both. Otherwise the rows are read in windows that end at each entry's place (so the entry is
   * written there), and rows inside an included entry are skipped.
   */
  async *#entriesWithFeedCidrs(
    snapshot: ReadSnapshot,
    filter: BlacklistFilter,
    schema: BlacklistSchema,
    aggregate: boolean,
    details: boolean,
    rows: number,
    included: readonly FeedCidrEntry[],
  ): AsyncGenerator<BlacklistEntry[] | AddressLines> {
    if (aggregate && !details) {
      const builder = new RangeSetBuilder();
      for await (const page of this.#addressPages(snapshot, filter, schema, rows, this.#aggregatePageSize)) {
        builder.addLines(page.text);
      }
      for (const entry of included) builder.add(entry.text);
      for (const chunk of cidrLineChunks(builder.build(), this.#addressPageSize)) {
        yield new AddressLines(chunk, true);
      }
      return;
    }
    if (aggregate) {
      yield* aggregated(blacklistPages(snapshot.db, filter, schema, rows, PAGE_SIZE, false), included);
      return;
    }
    const coveredBuilder = new RangeSetBuilder();
    for (const entry of included) coveredBuilder.add(entry.text);
    const covered = new RangeLookup(coveredBuilder.build());
    if (!details) {
      let parts: string[] = [];
      let size = 0;
      for await (const item of this.#windows(snapshot, filter, schema, rows, included, true)) {
        if ('entry' in item) {
          parts.push(`${item.entry.text}\n`);
          size++;
        } else if ('text' in item) {
          const text = item.text;
          let start = 0;
          while (start < text.length) {
            let end = text.indexOf('\n', start);
            if (end < 0) end = text.length;
            const line = text.slice(start, end);
            if (!covered.hasLine(line)) {
              parts.push(`${line}\n`);
              size++;
            }
            start = end + 1;
          }
        }
        if (size >= this.#addressPageSize) {
          yield new AddressLines(parts.join(''));
          parts = [];
          size = 0;
        }
      }
      if (parts.length > 0) yield new AddressLines(parts.join(''));
      return;
    }
    let out: BlacklistEntry[] = [];
    for await (const item of this.#windows(snapshot, filter, schema, rows, included, false)) {
      if ('entry' in item) {
        out.push(feedEntry(item.entry));
        continue;
      }
      if (!('rows' in item)) continue;
      const listed = item.rows.filter((row) => !covered.hasKey(row.ip_key));
      const protocols = await protocolsFor(
        snapshot.db,
        schema,
        listed.map((r) => r.ip),
      );
      for (const row of listed) out.push(toEntry(row, protocols.get(row.ip) ?? []));
      if (out.length >= PAGE_SIZE) {
        yield out;
        out = [];
      }
    }
    if (out.length > 0) yield out;
  }

  /**
   * The first `rows` rows in list order with each feed CIDR entry at its place: rows (as address text or
   * full rows) read in windows bounded by the next entry's (score, lastSeen), then the entry.
   */
  async *#windows(
    snapshot: ReadSnapshot,
    filter: BlacklistFilter,
    schema: BlacklistSchema,
    rows: number,
    included: readonly FeedCidrEntry[],
    addressesOnly: boolean,
  ): AsyncGenerator<{ entry: FeedCidrEntry } | { text: string } | { rows: BlacklistRow[] }> {
    let remaining = rows;
    let after: Keyset | null = null;
    const read = async function* (
      this: BlacklistService,
      window: ListWindow,
    ): AsyncGenerator<{ text: string } | { rows: BlacklistRow[] }> {
      if (addressesOnly && snapshot.sqlite && this.#rawSqlite) {
        const pages = sqliteAddressPages(
          snapshot.sqlite,
          snapshot.db,
          filter,
          schema,
          remaining,
          this.#addressPageSize,
          window,
        );
        for (const page of pages) {
          remaining -= page.count;
          after = page.last ?? after;
          yield { text: page.text };
        }
        return;
      }
      const pageSize = addressesOnly ? Math.min(PAGE_SIZE, this.#addressPageSize) : PAGE_SIZE;
      for await (const page of blacklistPages(
        snapshot.db,
        filter,
        schema,
        remaining,
        pageSize,
        addressesOnly,
        window,
      )) {
        const last = page[page.length - 1];
        if (!last) continue;
        remaining -= page.length;
        after = { score: last.score, lastSeen: last.last_seen, ip: last.ip };
        yield addressesOnly ? { text: page.map((row) => row.ip).join('\n') } : { rows: page };
      }
    };
    for (const entry of included) {
      if (remaining > 0) {
        yield* read.call(this, { after, bound: { score: entry.score, lastSeen: entry.lastSeen } });
      }
      yield { entry };
    }
    if (remaining > 0) yield* read.call(this, { after, bound: null });
  }

  async *#prebuiltEntries(set: RangeSet, release: () => Promise<void>): AsyncGenerator<AddressLines> {
    try {
      await release();
      for (const chunk of cidrLineChunks(set, this.#addressPageSize)) yield new AddressLines(chunk, true);
    } finally {
      await release();
    }
  }

  async *#entries(
    snapshot: ReadSnapshot,
    filter: BlacklistFilter,
    schema: BlacklistSchema,
    aggregate: boolean,
    details: boolean,
    count: number,
    release: () => Promise<void>,
  ): AsyncGenerator<BlacklistEntry[] | AddressLines> {
    try {
      if (!details) {
        // Address-only formats: pages of address text, never an object or a string per row.
        if (!aggregate) {
          for await (const page of this.#addressPages(snapshot, filter, schema, count)) {
            yield new AddressLines(`${page.text}\n`);
          }
          return;
        }
        const builder = new RangeSetBuilder();
        for await (const page of this.#addressPages(
          snapshot,
          filter,
          schema,
          count,
          this.#aggregatePageSize,
        )) {
          builder.addLines(page.text);
        }
        for (const chunk of cidrLineChunks(builder.build(), this.#addressPageSize)) {
          yield new AddressLines(chunk, true);
        }
        return;
      }
      const pages = blacklistPages(snapshot.db, filter, schema, count, PAGE_SIZE, false);
      if (!aggregate) {
        for await (const page of pages) {
          const protocols = await protocolsFor(
            snapshot.db,
            schema,
            page.map((r) => r.ip),
          );
          yield page.map((row) => toEntry(row, protocols.get(row.ip) ?? []));
        }
        return;
      }
      yield* aggregated(pages);
    } finally {
      await release();
    }
  }

  /**
   * The listed addresses in list order, a page at a time: on SQLite with raw prepared statements on the
   * snapshot's connection (`sqliteAddressPages`), elsewhere through Kysely (`blacklistPages`). Both read
   * the same rows in the same order; the `rawSqlite: false` option forces the Kysely path (tests compare
   * the two).
   */
  async *#addressPages(
    snapshot: ReadSnapshot,
    filter: BlacklistFilter,
    schema: BlacklistSchema,
    count: number,
    /** Addresses per page on SQLite (the aggregate reads, which hold the whole list, read larger ones). */
    sqlitePageSize = this.#addressPageSize,
  ): AsyncGenerator<AddressPage> {
    if (snapshot.sqlite && this.#rawSqlite) {
      yield* sqliteAddressPages(snapshot.sqlite, snapshot.db, filter, schema, count, sqlitePageSize);
      return;
    }
    const pageSize = Math.min(PAGE_SIZE, this.#addressPageSize);
    for await (const page of blacklistPages(snapshot.db, filter, schema, count, pageSize, true)) {
      if (page.length > 0) yield { text: page.map((row) => row.ip).join('\n'), count: page.length };
    }
  }
}

function keyAddress(value: bigint) {
  const bytes = Buffer.alloc(16);
  let rest = value;
  for (let i = 15; i >= 0; i--) {
    bytes[i] = Number(rest & 0xffn);
    rest >>= 8n;
  }
  return ipFromKey(bytes);
}

// The country/ASN filters as filtered() applies them to rows (blacklist-repository).
function geoPasses(params: BlacklistParams, country: string | null, asn: string | null): boolean {
  if (
    params.onlyCountries &&
    (country === null || !(country === '' || params.onlyCountries.includes(country)))
  ) {
    return false;
  }
  if (params.exceptCountries && country !== null && params.exceptCountries.includes(country)) return false;
  if (params.onlyAsn && (asn === null || !(asn === '' || params.onlyAsn.includes(asn)))) return false;
  if (params.exceptAsn && asn !== null && params.exceptAsn.includes(asn)) return false;
  return true;
}

function feedEntry(entry: FeedCidrEntry): BlacklistEntry {
  return {
    ip: entry.text,
    version: entry.version,
    confidenceLevel: entry.score,
    lastSeen: entry.lastSeen,
    sessions: 0,
    protocols: [],
    countryCode: entry.countryCode,
    asn: entry.asn,
    asnOrg: entry.asnOrg,
  };
}

function toEntry(row: BlacklistRow, protocols: readonly string[]): BlacklistEntry {
  return {
    ip: row.ip,
    version: row.ip_version === 6 ? 6 : 4,
    confidenceLevel: row.score,
    lastSeen: row.last_seen,
    sessions: row.sessions,
    protocols,
    countryCode: row.country_code,
    asn: row.asn,
    asnOrg: row.asn_org,
  };
}

/**
 * `aggregate=true` for json/csv: the exact minimal CIDR cover of the listed addresses. Per CIDR the
 * fields summarise its members: the lowest confidence, the newest lastSeen, the summed sessions, and
 * country/ASN only when every member shares them. Memory: one small record per listed address. (The
 * firewall and text formats show only the CIDR, so they keep nothing but the range set: see #entries.)
 */
async function* aggregated(
  pages: AsyncGenerator<BlacklistRow[]>,
  feedCidrs: readonly FeedCidrEntry[] = [],
): AsyncGenerator<BlacklistEntry[]> {
  const builder = new RangeSetBuilder();
  const members: { key: bigint; row: Omit<BlacklistRow, 'ip' | 'ip_key' | 'ip_version'> }[] = [];
  for await (const page of pages) {
    for (const row of page) {
      builder.addKey(row.ip_key);
      members.push({ key: keyValue(row.ip_key), row });
    }
  }
  // A feed CIDR entry is an aligned block, so it lies wholly inside one CIDR of the cover: a member
  // keyed by its first address.
  for (const entry of feedCidrs) {
    builder.add(entry.text);
    members.push({
      key: entry.first,
      row: {
        score: entry.score,
        last_seen: entry.lastSeen,
        sessions: 0,
        country_code: entry.countryCode,
        asn: entry.asn,
        asn_org: entry.asnOrg,
      },
    });
  }
  members.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const cidrs: { text: string; address: string; prefixLength: number; version: 4 | 6 }[] = [];
  forEachCidr(builder.build(), (text, address, prefixLength, version) => {
    cidrs.push({ text, address, prefixLength, version });
  });
  // IPv4 keys (::ffff:0:0/96) sort below every public IPv6 key, matching forEachCidr's v4-then-v6 order.
  let index = 0;
  let out: BlacklistEntry[] = [];
  for (const cidr of cidrs) {
    const parsed = parseIp(cidr.address);
    if (!parsed.ok) continue;
    const start = keyValue(parsed.ip.key);
    const hostBits = BigInt((cidr.version === 4 ? 32 : 128) - cidr.prefixLength);
    const end = start + (1n << hostBits) - 1n;
    let confidence = 100;
    let lastSeen = 0;
    let sessions = 0;
    let country: string | null | undefined;
    let asn: string | null | undefined;
    let asnOrg: string | null | undefined;
    while (index < members.length) {
      const member = members[index];
      if (!member || member.key > end) break;
      index++;
      if (member.key < start) continue;
      const row = member.row;
      confidence = Math.min(confidence, row.score);
      lastSeen = Math.max(lastSeen, row.last_seen);
      sessions += row.sessions;
      country = country === undefined || country === row.country_code ? row.country_code : null;
      asn = asn === undefined || asn === row.asn ? row.asn : null;
      asnOrg = asnOrg === undefined || asnOrg === row.asn_org ? row.asn_org : null;
    }
    out.push({
      ip: cidr.text,
      version: cidr.version,
      confidenceLevel: confidence,
      lastSeen,
      sessions,
      protocols: [],
      countryCode: country ?? null,
      asn: asn ?? null,
      asnOrg: asnOrg ?? null,
    });
    if (out.length >= 5000) {
      yield out;
      out = [];
    }
  }
  if (out.length > 0) yield out;
}

function keyValue(key: Uint8Array): bigint {
  let value = 0n;
  for (let i = 0; i < 16; i++) value = (value << 8n) | BigInt(key[i] ?? 0);
  return value;
}
