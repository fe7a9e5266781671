// Builds the scoring input for one IP from its aggregates and stores the resulting score (SPEC §5).
import { ipFromKey } from '../core/ip.js';
import { type ScoreResult, type ScoringInput, type ScoringPolicy, score } from '../core/scoring.js';
import type { DbExecutor } from '../store/database.js';
import { getReputations, setScores } from '../store/report-batch-repository.js';
import { getReputation, type ReputationRow, setScore } from '../store/reputation-repository.js';
import type { BenignSources } from './benign-sources.js';

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

export class ReputationScorer {
  private readonly listeners: ScoreListener[] = [];

  constructor(
    private readonly policy: ScoringPolicy,
    private readonly benign: BenignSources,
  ) {}

  onScoreChanged(listener: ScoreListener): void {
    this.listeners.push(listener);
  }

  /** The scoring input for a stored reputation row (aggregates only; never raw telemetry). */
  async inputFor(_db: DbExecutor, row: ReputationRow, ignoreWhitelist = false): Promise<ScoringInput> {
    const match = this.benign.match(ipFromKey(row.ip_key));
    return {
      sensor: { sessions: Number(row.sessions), protocols: 0, primitives: 0, behaviors: [] },
      contributorWeight: Number(row.contributor_weight),
      feeds: [],
      whitelistFactor: match ? match.factor : null,
      ignoreWhitelist,
    };
  }

  async scoreRow(db: DbExecutor, row: ReputationRow, ignoreWhitelist = false): Promise<ScoreResult> {
    return score(await this.inputFor(db, row, ignoreWhitelist), this.policy);
  }

  /** Recomputes and stores the score of `ip` inside the caller's transaction; returns it. */
  async rescore(tx: DbExecutor, ip: string, now: number): Promise<number> {
    const row = await getReputation(tx, ip);
    if (!row) return 0;
    const input = await this.inputFor(tx, row);
    const withWhitelist = score(input, this.policy).confidenceLevel;
    const raw = score({ ...input, ignoreWhitelist: true }, this.policy).confidenceLevel;
    await setScore(tx, ip, withWhitelist, raw, now);
    const updated = { ...row, score: withWhitelist, score_raw: raw, score_updated_at: now };
    for (const listener of this.listeners) await listener(tx, updated, row.score, now);
    return withWhitelist;
  }

  /**
   * The batch form of `rescore` for many IPs in one transaction (bulk report): rows read and scores written
   * in a few set statements, the same `score()` per row. Listeners run, in IP order, only for rows whose
   * stored score changed (a listener given an unchanged score has nothing to publish). Returns ip → score.
   */
  async rescoreMany(tx: DbExecutor, ips: readonly string[], now: number): Promise<Map<string, number>> {
    const sorted = [...new Set(ips)].sort();
    const rows = await getReputations(tx, sorted);
    const results = new Map<string, number>();
    const writes: { ip: string; score: number; raw: number }[] = [];
    const changed: { row: ReputationRow; before: number }[] = [];
    for (const ip of sorted) {
      const row = rows.get(ip);
      if (!row) continue;
      const input = await this.inputFor(tx, row);
      const withWhitelist = score(input, this.policy).confidenceLevel;
      const raw = score({ ...input, ignoreWhitelist: true }, this.policy).confidenceLevel;
      writes.push({ ip, score: withWhitelist, raw });
      results.set(ip, withWhitelist);
      if (withWhitelist !== row.score) {
        changed.push({
          row: { ...row, score: withWhitelist, score_raw: raw, score_updated_at: now },
          before: row.score,
        });
      }
    }
    await setScores(tx, writes, now);
    for (const { row, before } of changed) {
      for (const listener of this.listeners) await listener(tx, row, before, now);
    }
    return results;
  }
}
