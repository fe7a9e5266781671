// Reputation look-ups for /v1/key/check (SPEC §3.1): served from aggregates, with the score's breakdown.
import { categoryId, parseCategory } from '../core/categories.js';
import { type IpAddress, isPublicIp } from '../core/ip.js';
import { redactEmails } from '../core/redact.js';
import { type ScoreBreakdown, type ThreatLevel, threatLevel } from '../core/scoring.js';
import { DAY_MS, toIso, utcDay } from '../core/time.js';
import { feedListingsFor } from '../store/feed-repository.js';
import { categoryCountsSince, newestReports } from '../store/reports-repository.js';
import {
  countReportersSince,
  getCategoryCounts,
  getDayTotals,
  getReputation,
} from '../store/reputation-repository.js';
import type { Store } from '../store/store.js';
import type { BenignSources } from './benign-sources.js';
import type { BulkReportQueue } from './bulk-report-queue.js';
import { behaviorsFor, primitivesFor, protocolsFor } from './evidence-read.js';
import { type GeoLookup, NO_GEO } from './geo-lookup.js';
import type { ReputationScorer } from './reputation-scoring.js';

export interface CheckOptions {
  verbose: boolean;
  /** Days; only evidence newer than that counts toward the counters shown. */
  maxAgeDays: number | null;
  protocols: readonly string[] | null;
  ignoreWhitelist: boolean;
}

export interface CheckResult {
  ip: string;
  found: boolean;
  isPublic: boolean;
  ipVersion: 4 | 6;
  confidenceLevel: number;
  threatLevel: ThreatLevel;
  whitelisted: boolean;
  whitelistSource: string | null;
  geolocation: {
    countryCode: string | null;
    countryName: string | null;
    city: string | null;
    asn: string | null;
    asnOrg: string | null;
    isTor: boolean;
    isProxy: boolean;
  } | null;
  firstSeen: string | null;
  lastSeen: string | null;
  totalSessions: number;
  totalEvents: number;
  protocols: { protocol: string; sessions: number; events: number }[];
  behaviors?: { name: string; severity: string; count: number; description: string; mitre: string[] }[];
  primitives?: { name: string; count: number; description: string }[];
  contributor: {
    reportCount: number;
    distinctReporters: number;
    lastReportedAt: string | null;
    categories: { category: string; id: number; count: number }[];
    reports?: { category: string; protocol: string | null; comment: string | null; reportedAt: string }[];
  };
  feeds: { name: string; listedAt: string }[];
  scoreBreakdown: ScoreBreakdown | null;
}

export const REPORT_LIST_LIMIT = 20;

const REGION_NAMES = new Intl.DisplayNames(['en'], { type: 'region' });

function countryName(code: string | null): string | null {
  if (!code) return null;
  try {
    return REGION_NAMES.of(code) ?? null;
  } catch {
    return null;
  }
}

/**
 * How long a computed check answer is reused (decision 0005). Evidence written through this process
 * drops the IP's entries at once; evidence written by another process shows within this time.
 */
export const CHECK_CACHE_TTL_MS = 1_000;
const CHECK_CACHE_CAPACITY = 50_000;

/** The cache slot of an answer: verbose or terse, with or without the whitelist discount. */
function variantOf(options: CheckOptions): string {
  if (options.verbose) return options.ignoreWhitelist ? 'vi' : 'vw';
  return options.ignoreWhitelist ? 'ti' : 'tw';
}

/** One cached answer; the JSON text and its UTF-8 length are filled in when first sent as JSON. */
interface CachedCheck {
  readonly result: CheckResult;
  readonly until: number;
  readonly day: number;
  json: string | undefined;
  bytes: number;
}

/** A cached answer as sent: the JSON text and its length in bytes (Content-Length). */
export interface CachedJson {
  readonly json: string;
  readonly bytes: number;
}

export class ReputationService {
  private readonly cache = new Map<string, Map<string, CachedCheck>>();
  /**
   * Invalidations while answers are being computed: an answer whose IP (or everything) was invalidated
   * after its computation started may predate the new evidence, so it is returned but not cached.
   * `touched` holds the sequence number of each IP's last invalidation, only while computations run.
   */
  private sequence = 0;
  private allTouchedAt = 0;
  private readonly touched = new Map<string, number>();
  private computing = 0;

  constructor(
    private readonly store: Store,
    private readonly scorer: ReputationScorer,
    private readonly benign: BenignSources,
    private readonly geo: GeoLookup = NO_GEO,
    /** Bulk rows this process accepted and has not applied yet (decision 0853): a check waits for them. */
    private readonly pending: Pick<BulkReportQueue, 'has' | 'settle'> | null = null,
  ) {
    scorer.onTouched((ip) => {
      this.cache.delete(ip);
      if (this.computing > 0) this.touched.set(ip, ++this.sequence);
    });
  }

  /** Drops every cached answer (whitelist or feed changes that affect many IPs). */
  invalidateAll(): void {
    this.cache.clear();
    this.allTouchedAt = ++this.sequence;
  }

  /**
   * The reputation of one IP. Answers without `maxAge` are cached per IP and variant for
   * CHECK_CACHE_TTL_MS; the returned object is the caller's to modify.
   */
  async check(ip: IpAddress, options: CheckOptions, now: number): Promise<CheckResult> {
    if (this.pending?.has(ip.text)) await this.pending.settle();
    if (options.maxAgeDays !== null) return this.compute(ip, options, now);
    const variant = variantOf(options);
    const day = utcDay(now);
    const wallNow = Date.now();
    const hit = this.cache.get(ip.text)?.get(variant);
    if (hit && hit.until > wallNow && hit.day === day) return { ...hit.result };
    const started = this.sequence;
    this.computing += 1;
    let result: CheckResult;
    try {
      result = await this.compute(ip, options, now);
    } finally {
      this.computing -= 1;
    }
    const invalidated = this.allTouchedAt > started || (this.touched.get(ip.text) ?? 0) > started;
    if (this.computing === 0) this.touched.clear();
    // Evidence for this IP was written while computing: the next check computes again.
    if (invalidated) return result;
    if (this.cache.size >= CHECK_CACHE_CAPACITY) this.cache.clear();
    let variants = this.cache.get(ip.text);
    if (!variants) {
      variants = new Map();
      this.cache.set(ip.text, variants);
    }
    variants.set(variant, { result, until: wallNow + CHECK_CACHE_TTL_MS, day, json: undefined, bytes: 0 });
    return { ...result };
  }

  /** The cached JSON answer when one is fresh (synchronous, for the hot path); undefined otherwise. */
  cachedJson(ip: IpAddress, options: CheckOptions, now: number): string | undefined {
    return this.cachedAnswer(ip, options, now)?.json;
  }

  /** As `cachedJson`, with the answer's length in bytes, measured once when it was serialised. */
  cachedAnswer(ip: IpAddress, options: CheckOptions, now: number): CachedJson | undefined {
    if (options.maxAgeDays !== null) return undefined;
    if (this.pending?.has(ip.text)) return undefined;
    const variant = variantOf(options);
    const entry = this.cache.get(ip.text)?.get(variant);
    if (entry === undefined || entry.json === undefined) return undefined;
    if (entry.until <= Date.now() || entry.day !== utcDay(now)) return undefined;
    return entry as CachedJson;
  }

  /**
   * The same answer as `check`, serialised as JSON, for callers that send it unchanged. The text is
   * cached with the answer, so a repeated look-up costs neither a query nor a serialisation.
   */
  async checkJson(ip: IpAddress, options: CheckOptions, now: number): Promise<string> {
    if (this.pending?.has(ip.text)) await this.pending.settle();
    if (options.maxAgeDays !== null) return JSON.stringify(await this.compute(ip, options, now));
    const variant = variantOf(options);
    const day = utcDay(now);
    let entry = this.cache.get(ip.text)?.get(variant);
    if (entry === undefined || entry.until <= Date.now() || entry.day !== day) {
      const result = await this.check(ip, options, now);
      entry = this.cache.get(ip.text)?.get(variant);
      // Invalidated while computing (new evidence for this IP): serialise the answer just computed.
      if (entry === undefined) return JSON.stringify(result);
    }
    if (entry.json === undefined) {
      entry.json = JSON.stringify(entry.result);
      entry.bytes = Buffer.byteLength(entry.json);
    }
    return entry.json;
  }

  private async compute(ip: IpAddress, options: CheckOptions, now: number): Promise<CheckResult> {
    const isPublic = isPublicIp(ip);
    const benign = isPublic ? this.benign.match(ip) : null;
    const row = isPublic ? await getReputation(this.store.db, ip.text) : undefined;
    // CIDR listings cover addresses without a reputation row, so feeds are shown for every public IP.
    const listings = isPublic ? await feedListingsFor(this.store.db, ip.key, ip.version) : [];
    const feeds = listings
      .filter((listing) => listing.kind !== 'tor')
      .map((listing) => ({ name: listing.name, listedAt: toIso(listing.listedAt) }));
    const isTor = listings.some((listing) => listing.kind === 'tor');
    const base: CheckResult = {
      ip: ip.text,
      found: false,
      isPublic,
      ipVersion: ip.version,
      confidenceLevel: 0,
      threatLevel: 'none',
      whitelisted: benign !== null,
      whitelistSource: benign?.source ?? null,
      geolocation: null,
      firstSeen: null,
      lastSeen: null,
      totalSessions: 0,
      totalEvents: 0,
      protocols: [],
      ...(options.verbose ? { behaviors: [], primitives: [] } : {}),
      contributor: {
        reportCount: 0,
        distinctReporters: 0,
        lastReportedAt: null,
        categories: [],
        ...(options.verbose ? { reports: [] } : {}),
      },
      feeds,
      scoreBreakdown: null,
    };
    if (!row) {
      // No row, but listed by feeds (an address inside a listed CIDR): scored on read from the listings.
      const evidence = listings.filter((listing) => listing.kind !== 'tor');
      if (evidence.length === 0) return base;
      const scored = this.scorer.scoreFeeds(ip, evidence, options.ignoreWhitelist);
      const times = evidence.map((listing) => listing.listedAt);
      const geo = this.geo.lookup(ip);
      return {
        ...base,
        found: true,
        confidenceLevel: scored.confidenceLevel,
        threatLevel: threatLevel(scored.confidenceLevel),
        geolocation: {
          countryCode: geo.countryCode,
          countryName: countryName(geo.countryCode),
          city: null,
          asn: geo.asn,
          asnOrg: geo.asnOrg,
          isTor,
          isProxy: false,
        },
        firstSeen: toIso(Math.min(...times)),
        lastSeen: toIso(Math.max(...times)),
        scoreBreakdown: scored.breakdown,
      };
    }
    // Stored columns first (set when the row was created); a live look-up fills rows created before the tables loaded.
    const live = row.country_code === null && row.asn === null ? this.geo.lookup(ip) : null;
    const countryCode = row.country_code ?? live?.countryCode ?? null;

    const scored = await this.scorer.scoreRow(this.store.db, row, options.ignoreWhitelist);
    const since = options.maxAgeDays === null ? 0 : now - options.maxAgeDays * DAY_MS;
    let reportCount = Number(row.report_count);
    let distinctReporters = row.distinct_reporters;
    let totalSessions = Number(row.sessions);
    let totalEvents = Number(row.events);
    if (options.maxAgeDays !== null) {
      const totals = await getDayTotals(this.store.db, row.ip, utcDay(since));
      reportCount = totals.reports;
      totalSessions = totals.sessions;
      totalEvents = totals.events;
      distinctReporters = await countReportersSince(this.store.db, row.ip, since);
    }
    const categoryCounts =
      options.maxAgeDays === null
        ? await getCategoryCounts(this.store.db, row.ip)
        : await categoryCountsSince(this.store.db, row.ip, since);
    const categories = categoryCounts.map((c) => {
      const category = parseCategory(c.category);
      return { category: c.category, id: category ? categoryId(category) : 16, count: c.count };
    });
    const reports = options.verbose
      ? (await newestReports(this.store.db, row.ip, since, REPORT_LIST_LIMIT)).map((r) => ({
          category: r.category,
          protocol: r.protocol,
          comment: r.comment === null ? null : redactEmails(r.comment),
          reportedAt: toIso(r.reportedAt),
        }))
      : undefined;
    const protocols = await protocolsFor(this.store.db, row.ip);
    const evidence = options.verbose
      ? {
          behaviors: (await behaviorsFor(this.store.db, row.ip)).map((b) => ({
            name: b.name,
            severity: b.severity,
            count: b.count,
            description: b.description,
            mitre: b.mitre,
          })),
          primitives: await primitivesFor(this.store.db, row.ip),
        }
      : {};
    return {
      ...base,
      ...evidence,
      found: true,
      confidenceLevel: scored.confidenceLevel,
      threatLevel: threatLevel(scored.confidenceLevel),
      geolocation: {
        countryCode,
        countryName: countryName(countryCode),
        city: null,
        asn: row.asn ?? live?.asn ?? null,
        asnOrg: row.asn_org ?? live?.asnOrg ?? null,
        isTor,
        isProxy: false,
      },
      firstSeen: toIso(Number(row.first_seen)),
      lastSeen: toIso(Number(row.last_seen)),
      totalSessions,
      totalEvents,
      protocols: options.protocols
        ? protocols.filter((p) => options.protocols?.includes(p.protocol))
        : protocols,
      contributor: {
        reportCount,
        distinctReporters,
        lastReportedAt: row.last_reported_at === null ? null : toIso(Number(row.last_reported_at)),
        categories,
        ...(reports ? { reports } : {}),
      },
      scoreBreakdown: scored.breakdown,
    };
  }
}
