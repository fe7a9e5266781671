// Blacklist generation (SPEC §3.2): snapshot, count and ETag before charging, then a streamed, optionally aggregated list.
import { createHash } from 'node:crypto';
import { AddressLines, type BlacklistEntry, type BlacklistFormat } from '../core/blacklist-format.js';
import { cidrLineChunks, forEachCidr, type RangeSet, RangeSetBuilder } from '../core/cidr-aggregate.js';
import { type Cidr, cidrLastKey, parseIp } from '../core/ip.js';
import {
  type AddressPage,
  type BlacklistFilter,
  type BlacklistFingerprint,
  type BlacklistRow,
  type BlacklistSchema,
  blacklistFingerprint,
  blacklistPages,
  detectBlacklistSchema,
  newestRescore,
  protocolsFor,
  qualifiesBeyond,
  sqliteAddressPages,
} from '../store/blacklist-repository.js';
import type { ReadSnapshot, Store } from '../store/store.js';

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

function keyRange(cidr: Cidr): { first: Buffer; last: Buffer } {
  return { first: cidr.network.key, last: cidrLastKey(cidr) };
}

export interface BlacklistServiceOptions {
  /** Read SQLite snapshots with raw prepared statements (default true); false keeps every read on Kysely. */
  readonly rawSqlite?: boolean;
  /** Rows per page of address-only reads (default 20,000); tests use small pages to cross boundaries. */
  readonly addressPageSize?: number;
}

export class BlacklistService {
  #schema: Promise<BlacklistSchema> | null = null;
  readonly #excluded: { first: Buffer; last: Buffer }[];
  readonly #allowlistText: string;

  readonly #rawSqlite: boolean;
  readonly #addressPageSize: number;

  constructor(
    private readonly store: Store,
    allowlist: readonly Cidr[],
    options: BlacklistServiceOptions = {},
  ) {
    this.#rawSqlite = options.rawSqlite ?? true;
    this.#addressPageSize = options.addressPageSize ?? ADDRESS_PAGE_SIZE;
    this.#excluded = allowlist.map(keyRange);
    this.#allowlistText = allowlist.map((c) => c.text).join(',');
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
      let prebuilt: { count: number; set: RangeSet } | null = null;
      let full: BlacklistFingerprint;
      if (readAhead && snapshot.sqlite) {
        const builder = new RangeSetBuilder();
        let count = 0;
        let maxLastSeen = 0;
        let sumScore = 0;
        let sumEnrichment = 0;
        const pages = sqliteAddressPages(
          snapshot.sqlite,
          snapshot.db,
          filter,
          schema,
          limit ?? Number.MAX_SAFE_INTEGER,
          this.#addressPageSize,
          true,
        );
        for (const page of pages) {
          builder.addLines(page.text);
          count += page.count;
          maxLastSeen = Math.max(maxLastSeen, page.maxLastSeen ?? 0);
          sumScore += page.sumScore ?? 0;
          sumEnrichment += page.sumEnrichment ?? 0;
        }
        // The same fields, in the same order, as blacklistFingerprint's address-only form.
        full = {
          count,
          maxScoreUpdatedAt: await newestRescore(snapshot.db),
          maxLastSeen,
          sumScore,
          sumSessions: 0,
          sumEnrichment,
        };
        prebuilt = { count, set: builder.build() };
      } else {
        full = await blacklistFingerprint(
          snapshot.db,
          filter,
          schema,
          limit ?? Number.MAX_SAFE_INTEGER,
          !details,
        );
      }
      const cutByTierCap =
        tierCap !== null &&
        limit === tierCap &&
        (params.requestedLimit === null || params.requestedLimit > tierCap) &&
        full.count === tierCap &&
        (await qualifiesBeyond(snapshot.db, filter, schema, tierCap));
      const fingerprints = new Map<number, BlacklistFingerprint>([[full.count, full]]);
      const etagFor = async (count: number) => {
        let fingerprint = fingerprints.get(count);
        if (!fingerprint) {
          fingerprint = await blacklistFingerprint(snapshot.db, filter, schema, count, !details);
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
  #etag(params: BlacklistParams, fingerprint: BlacklistFingerprint): string {
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
        ]),
      )
      .digest('base64url');
    return `"${hash.slice(0, 32)}"`;
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
        const pages = this.#addressPages(snapshot, filter, schema, count);
        if (!aggregate) {
          for await (const page of pages) yield new AddressLines(`${page.text}\n`);
          return;
        }
        const builder = new RangeSetBuilder();
        for await (const page of pages) builder.addLines(page.text);
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
  ): AsyncGenerator<AddressPage> {
    if (snapshot.sqlite && this.#rawSqlite) {
      yield* sqliteAddressPages(snapshot.sqlite, snapshot.db, filter, schema, count, this.#addressPageSize);
      return;
    }
    const pageSize = Math.min(PAGE_SIZE, this.#addressPageSize);
    for await (const page of blacklistPages(snapshot.db, filter, schema, count, pageSize, true)) {
      if (page.length > 0) yield { text: page.map((row) => row.ip).join('\n'), count: page.length };
    }
  }
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
async function* aggregated(pages: AsyncGenerator<BlacklistRow[]>): AsyncGenerator<BlacklistEntry[]> {
  const builder = new RangeSetBuilder();
  const members: { key: bigint; row: BlacklistRow }[] = [];
  for await (const page of pages) {
    for (const row of page) {
      builder.addKey(row.ip_key);
      members.push({ key: keyValue(row.ip_key), row });
    }
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
