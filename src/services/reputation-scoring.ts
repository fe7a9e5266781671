// Builds the scoring input for one IP from its aggregates and stores the resulting score (SPEC §5).
import type BetterSqlite3 from 'better-sqlite3';
import { type IpAddress, ipFromKey } from '../core/ip.js';
import { type ScoreResult, type ScoringInput, type ScoringPolicy, score } from '../core/scoring.js';
import type { DbExecutor } from '../store/database.js';
import { feedListingsFor } from '../store/feed-repository.js';
import { getReputations, setScores } from '../store/report-batch-repository.js';
import { getReputation, type ReputationRow, setScore } from '../store/reputation-repository.js';
import type { BenignSources } from './benign-sources.js';
import {
  type SensorScoringAggregates,
  sensorScoringAggregates,
  sensorScoringAggregatesMany,
  sensorScoringAggregatesSqlite,
} from './evidence-read.js';

/**
 * Called inside the writing transaction whenever an IP's stored score was recomputed (TAXII publishes
 * indicator versions from here). `before` is the previously stored score (0 for a new IP); `row` holds
 * the new score.
 */
export type ScoreListener = (
  tx: DbExecutor,
  row: ReputationRow,
  before: number,
  now: number,
) => Promise<void>;

/** The trust weights of the imported feeds listing this IP (SPEC §5 item 3), one per feed. */
export async function feedsFor(
  db: DbExecutor,
  row: Pick<ReputationRow, 'ip_key' | 'ip_version'>,
): Promise<{ trust: number }[]> {
  const listings = await feedListingsFor(db, Buffer.from(row.ip_key), row.ip_version === 6 ? 6 : 4);
  // A Tor exit list is context (geolocation.isTor), not evidence of abuse.
  return listings.filter((listing) => listing.kind !== 'tor').map((listing) => ({ trust: listing.trust }));
}

/** The batch form of a ScoreListener (rescoreMany): every changed row of one call, in IP order. */
export type ScoreBatchListener = (
  tx: DbExecutor,
  changes: readonly { readonly row: ReputationRow; readonly before: number }[],
  now: number,
) => Promise<void>;

/**
 * The deferred form of a listener (decision 0852): inside the writing transaction it only records, durably,
 * what the listener must do later (the TAXII outbox marks). `sqlite` is the raw connection `tx` is on.
 */
export type ScoreDeferredListener = (
  tx: DbExecutor,
  changes: readonly { readonly ip: string; readonly score: number; readonly before: number }[],
  now: number,
  sqlite: BetterSqlite3.Database | null,
) => Promise<void>;

/** What scoring needs of a reputation row besides the sensor aggregates and feeds. */
export type ScoringRow = Pick<
  ReputationRow,
  'ip' | 'ip_key' | 'ip_version' | 'sessions' | 'contributor_weight'
>;

/** A computed score: with the whitelist factor, without it (`raw`), and the highest behaviour severity. */
export interface ComputedScore {
  readonly score: number;
  readonly raw: number;
  readonly maxSeverity: number;
}

/** Options of the batch rescoring paths. */
export interface RescoreOptions {
  /** Listeners with a deferred form only record their work in the transaction (bulk report). */
  readonly defer?: boolean;
}

export class ReputationScorer {
  private readonly listeners: {
    one: ScoreListener;
    many?: ScoreBatchListener;
    deferred?: ScoreDeferredListener;
  }[] = [];

  constructor(
    private readonly policy: ScoringPolicy,
    private readonly benign: BenignSources,
  ) {}

  /**
   * `listener` runs for each changed row; with `many`, rescoreMany hands that one call all of its changed
   * rows instead (it must do what calling `listener` for each of them in order would). With `deferred`,
   * batch rescoring asked to defer (`{ defer: true }`) calls only that, and whoever drains what it
   * recorded must do what `many` would have done (decision 0852).
   */
  onScoreChanged(listener: ScoreListener, many?: ScoreBatchListener, deferred?: ScoreDeferredListener): void {
    this.listeners.push({
      one: listener,
      ...(many ? { many } : {}),
      ...(deferred ? { deferred } : {}),
    });
  }

  private readonly touchListeners: ((ip: string) => void)[] = [];
  private feedPresence: { any: boolean; until: number } | null = null;

  /**
   * Whether any feed entry exists. Most instances import no feeds, and then scoring skips the per-IP
   * feed look-up. Reads (`remember`) reuse the answer for a second; writers ask inside their own
   * transaction every time. `forgetFeeds()` (called by the feed importer) resets the read memo.
   */
  private async feedsPresent(db: DbExecutor, remember: boolean): Promise<boolean> {
    const wallNow = Date.now();
    if (remember && this.feedPresence && this.feedPresence.until > wallNow) return this.feedPresence.any;
    const row = await db.selectFrom('feed_entries').select('feed').limit(1).executeTakeFirst();
    if (remember) this.feedPresence = { any: row !== undefined, until: wallNow + 1_000 };
    return row !== undefined;
  }

  forgetFeeds(): void {
    this.feedPresence = null;
  }

  private async feedsOf(db: DbExecutor, row: ReputationRow, remember: boolean): Promise<{ trust: number }[]> {
    return (await this.feedsPresent(db, remember)) ? feedsFor(db, row) : [];
  }

  /** Called (synchronously) for every IP whose evidence was written and rescored, changed or not. */
  onTouched(listener: (ip: string) => void): void {
    this.touchListeners.push(listener);
  }

  private touched(ip: string): void {
    for (const listener of this.touchListeners) listener(ip);
  }

  /**
   * Tells the touch listeners again, once the writer's transaction committed: rescoring tells them from
   * inside it, and a reader on another connection may cache the state before the commit in between.
   */
  committed(ips: Iterable<string>): void {
    for (const ip of ips) this.touched(ip);
  }

  /** The scoring input for a stored reputation row (aggregates only; never raw telemetry). */
  async inputFor(db: DbExecutor, row: ReputationRow, ignoreWhitelist = false): Promise<ScoringInput> {
    return (await this.inputWithSeverity(db, row, ignoreWhitelist, true)).input;
  }

  private async inputWithSeverity(
    db: DbExecutor,
    row: ReputationRow,
    ignoreWhitelist = false,
    remember = false,
  ): Promise<{ input: ScoringInput; maxSeverity: number }> {
    const [sensor, feeds] = await Promise.all([
      sensorScoringAggregates(db, row.ip),
      this.feedsOf(db, row, remember),
    ]);
    return this.inputFrom(row, sensor, feeds, ignoreWhitelist);
  }

  private inputFrom(
    row: ScoringRow,
    sensor: SensorScoringAggregates,
    feeds: readonly { trust: number }[],
    ignoreWhitelist: boolean,
  ): { input: ScoringInput; maxSeverity: number } {
    const match = this.benign.match(ipFromKey(row.ip_key));
    const input: ScoringInput = {
      sensor: {
        sessions: Number(row.sessions),
        protocols: sensor.protocols,
        primitives: sensor.primitives,
        behaviors: sensor.behaviors,
      },
      contributorWeight: Number(row.contributor_weight),
      feeds,
      whitelistFactor: match ? match.factor : null,
      ignoreWhitelist,
    };
    return { input, maxSeverity: sensor.maxSeverity };
  }

  /**
   * Scores and notifies a row that bulk importers created with feed evidence only (no sensor or
   * contributor evidence yet): the same result `rescore` would store, without reading the row back.
   */
  scoreFeedOnly(ip: IpAddress, feeds: readonly { trust: number }[]): { score: number; raw: number } {
    return {
      score: this.scoreFeeds(ip, feeds, false).confidenceLevel,
      raw: this.scoreFeeds(ip, feeds, true).confidenceLevel,
    };
  }

  /**
   * The score, with its breakdown, of an address whose only evidence is feed listings (e.g. an address
   * inside a listed CIDR, which never gets a row of its own: decision 0702).
   */
  scoreFeeds(ip: IpAddress, feeds: readonly { trust: number }[], ignoreWhitelist: boolean): ScoreResult {
    const match = this.benign.match(ip);
    return score(
      {
        sensor: { sessions: 0, protocols: 0, primitives: 0, behaviors: [] },
        contributorWeight: 0,
        feeds,
        whitelistFactor: match ? match.factor : null,
        ignoreWhitelist,
      },
      this.policy,
    );
  }

  /** Runs the score listeners for a row whose score was stored by a bulk writer (see scoreFeedOnly). */
  async notify(tx: DbExecutor, row: ReputationRow, before: number, now: number): Promise<void> {
    this.touched(row.ip);
    for (const listener of this.listeners) await listener.one(tx, row, before, now);
  }

  async scoreRow(db: DbExecutor, row: ReputationRow, ignoreWhitelist = false): Promise<ScoreResult> {
    return score(await this.inputFor(db, row, ignoreWhitelist), this.policy);
  }

  private async store(
    tx: DbExecutor,
    row: ReputationRow,
    scored: { input: ScoringInput; maxSeverity: number },
    now: number,
  ): Promise<number> {
    const { input, maxSeverity } = scored;
    const withWhitelist = score(input, this.policy).confidenceLevel;
    const raw = score({ ...input, ignoreWhitelist: true }, this.policy).confidenceLevel;
    await setScore(tx, row.ip, withWhitelist, raw, now, maxSeverity);
    const updated = {
      ...row,
      score: withWhitelist,
      score_raw: raw,
      score_updated_at: now,
      max_severity: maxSeverity,
    };
    this.touched(row.ip);
    for (const listener of this.listeners) await listener.one(tx, updated, row.score, now);
    return withWhitelist;
  }

  /** Recomputes and stores the score of `ip` inside the caller's transaction; returns it. */
  async rescore(tx: DbExecutor, ip: string, now: number): Promise<number> {
    const row = await getReputation(tx, ip);
    if (!row) return 0;
    return this.store(tx, row, await this.inputWithSeverity(tx, row), now);
  }

  /**
   * Scores many rows in memory (`rows` as they will be stored), reading only the sensor aggregates (and
   * feed listings, when any feed exists): the same `score()` as `rescore`. Nothing is written.
   * `sqlite` (the raw connection `tx` is on) reads the aggregates with three set statements.
   */
  async scoreMany(
    tx: DbExecutor,
    rows: readonly ScoringRow[],
    sqlite: BetterSqlite3.Database | null = null,
  ): Promise<Map<string, ComputedScore>> {
    const ips = rows.map((row) => row.ip);
    const aggregates = sqlite
      ? sensorScoringAggregatesSqlite(sqlite, ips)
      : await sensorScoringAggregatesMany(tx, ips);
    const anyFeeds = await this.feedsPresent(tx, false);
    const out = new Map<string, ComputedScore>();
    for (const row of rows) {
      const sensor = aggregates.get(row.ip);
      if (!sensor) continue;
      const { input, maxSeverity } = this.inputFrom(
        row,
        sensor,
        anyFeeds ? await feedsFor(tx, row) : [],
        false,
      );
      const withWhitelist = score(input, this.policy).confidenceLevel;
      const raw = score({ ...input, ignoreWhitelist: true }, this.policy).confidenceLevel;
      out.set(row.ip, { score: withWhitelist, raw, maxSeverity });
    }
    return out;
  }

  /**
   * After a batch stored its scores: the touch listeners for every IP in `ips`, then the score listeners
   * for `changed` (IP order). With `defer`, listeners that have a deferred form only record their work;
   * the others get the changed rows, read back when `changed` holds no full rows.
   */
  async settleMany(
    tx: DbExecutor,
    ips: readonly string[],
    changed: readonly { readonly ip: string; readonly score: number; readonly before: number }[],
    now: number,
    options: RescoreOptions & {
      sqlite?: BetterSqlite3.Database | null;
      rows?: readonly { readonly row: ReputationRow; readonly before: number }[];
    } = {},
  ): Promise<void> {
    for (const ip of ips) this.touched(ip);
    let rows = options.rows;
    const full = async () => {
      if (rows) return rows;
      const read = await getReputations(
        tx,
        changed.map((c) => c.ip),
      );
      rows = changed.flatMap((c) => {
        const row = read.get(c.ip);
        return row ? [{ row, before: c.before }] : [];
      });
      return rows;
    };
    for (const listener of this.listeners) {
      if (options.defer && listener.deferred)
        await listener.deferred(tx, changed, now, options.sqlite ?? null);
      else if (listener.many) await listener.many(tx, await full(), now);
      else for (const { row, before } of await full()) await listener.one(tx, row, before, now);
    }
  }

  /**
   * The batch form of `rescore` for many IPs in one transaction (bulk report, evidence ingest): rows read and scores written
   * in a few set statements, the same `score()` per row. Listeners run, in IP order, only for rows whose
   * stored score changed (a listener given an unchanged score has nothing to publish). Returns ip → score.
   */
  async rescoreMany(
    tx: DbExecutor,
    ips: readonly string[],
    now: number,
    /** The raw SQLite connection `tx` is on, to store the scores through a prepared statement. */
    sqlite: BetterSqlite3.Database | null = null,
    options: RescoreOptions = {},
  ): Promise<Map<string, number>> {
    const sorted = [...new Set(ips)].sort();
    const rows = await getReputations(tx, sorted);
    const present = sorted.flatMap((ip) => {
      const row = rows.get(ip);
      return row ? [row] : [];
    });
    const scores = await this.scoreMany(tx, present, null);
    const results = new Map<string, number>();
    const writes: { ip: string; score: number; raw: number; maxSeverity: number }[] = [];
    const changed: { row: ReputationRow; before: number }[] = [];
    for (const row of present) {
      const computed = scores.get(row.ip);
      if (!computed) continue;
      const { score: withWhitelist, raw, maxSeverity } = computed;
      writes.push({ ip: row.ip, score: withWhitelist, raw, maxSeverity });
      results.set(row.ip, withWhitelist);
      if (withWhitelist !== row.score || maxSeverity !== row.max_severity) {
        changed.push({
          row: {
            ...row,
            score: withWhitelist,
            score_raw: raw,
            score_updated_at: now,
            max_severity: maxSeverity,
          },
          before: row.score,
        });
      }
    }
    await setScores(tx, writes, now, sqlite);
    await this.settleMany(
      tx,
      sorted,
      changed.map((c) => ({ ip: c.row.ip, score: c.row.score, before: c.before })),
      now,
      { ...options, sqlite, rows: changed },
    );
    return results;
  }
}
