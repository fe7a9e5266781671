// The TAXII 2.1 feed (SPEC §4): publishes indicator versions on score changes and serves keyset pages of them.
import { randomUUID } from 'node:crypto';
import type { Config } from '../config/config.js';
import { cidrContains, parseIp } from '../core/ip.js';
import {
  type IndicatorBehavior,
  identityObject,
  indicatorObject,
  parseStixId,
  STIX_SPEC_VERSION,
  type StixIdentity,
  stixId,
  stixTimestamp,
  TLP_CLEAR_MARKING,
} from '../core/stix.js';
import type { TaxiiPage } from '../core/taxii.js';
import { DAY_MS } from '../core/time.js';
import type { DbExecutor } from '../store/database.js';
import { categoryNamesMany } from '../store/report-batch-repository.js';
import { getCategoryCounts, type ReputationRow, reputationIpsIn } from '../store/reputation-repository.js';
import type { Store } from '../store/store.js';
import {
  allocateDateAdded,
  allocateDateAddedBlock,
  deleteRevokedBefore,
  insertVersion,
  insertVersions,
  latestVersionForIp,
  latestVersionsForIps,
  listVersionRows,
  lockFeedClock,
  type NewVersion,
  objectExists,
  replaceReputationStixId,
  type TaxiiPageRow,
  type TaxiiVersionRow,
} from '../store/taxii-repository.js';

/** How long a revoked indicator stays in the feed before `purgeOldVersions` removes it (SPEC §4). */
export const REVOKED_RETENTION_MS = 30 * DAY_MS;
export const TAXII_COLLECTION_ALIAS = 'threat-intel';

const SETTING_COLLECTION_ID = 'taxii.collection_id';
const SETTING_IDENTITY_ID = 'taxii.identity_id';
const SETTING_IDENTITY_CREATED = 'taxii.identity_created';

/** The instance's stable feed identifiers, created once and kept in `settings`. */
export interface FeedIds {
  readonly collectionId: string;
  readonly identity: StixIdentity;
}

/**
 * Behaviours (name, MITRE ids, kill-chain phase) of one IP, for its indicator. The evidence pipeline
 * supplies this; until then the feed publishes categories only.
 */
export type BehaviorSource = (db: DbExecutor, ip: string) => Promise<readonly IndicatorBehavior[]>;

export const NO_BEHAVIORS: BehaviorSource = async () => [];

/** What an indicator says about an IP besides its score: categories and behaviours. */
export interface IndicatorFacts {
  readonly categories: readonly string[];
  readonly behaviors: readonly IndicatorBehavior[];
}

/** Reads the facts an indicator version is built from (aggregates only, never raw telemetry). */
export async function readIndicatorFacts(
  db: DbExecutor,
  ip: string,
  behaviors: BehaviorSource = NO_BEHAVIORS,
): Promise<IndicatorFacts> {
  const categories = (await getCategoryCounts(db, ip)).map((c) => c.category);
  return { categories, behaviors: await behaviors(db, ip) };
}

// Inserts `revoked: true` right after `modified`, where indicatorObject puts it, so revoked versions
// look like every other version.
function revokedJson(objectJson: string, modifiedMs: number): string {
  const source = JSON.parse(objectJson) as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(source)) {
    if (name === 'revoked') continue;
    out[name] = name === 'modified' ? stixTimestamp(modifiedMs) : value;
    if (name === 'modified') out.revoked = true;
  }
  return JSON.stringify(out);
}

/**
 * Publishes a `revoked: true` version of the IP's current indicator (purged or allowlisted IP, SPEC §4),
 * inside the caller's transaction. Works from the stored versions alone, so it may run before or after
 * the reputation row is deleted. Returns false when there was nothing to revoke (never listed, or
 * already revoked). A revoked STIX id is never published again; a re-listed IP gets a new id.
 */
export async function revokeIndicator(tx: DbExecutor, ip: string, now: number): Promise<boolean> {
  const parsed = parseIp(ip);
  const text = parsed.ok ? parsed.ip.text : ip;
  const latest = await latestVersionForIp(tx, text);
  if (!latest || latest.revoked === 1) return false;
  const modifiedMs = Math.max(Math.floor(now), Number(latest.modified_ms) + 1);
  await insertVersion(tx, {
    stixId: latest.stix_id,
    objectType: latest.object_type,
    ip: text,
    dateAddedUs: await allocateDateAdded(tx, Math.floor(now) * 1000),
    createdMs: Number(latest.created_ms),
    modifiedMs,
    confidence: latest.confidence,
    revoked: true,
    object: revokedJson(latest.object, modifiedMs),
  });
  return true;
}

/**
 * Removes revoked indicators (every version) whose revocation was added before `olderThanMs`
 * (epoch ms). Call daily with `now - REVOKED_RETENTION_MS`. Returns the number of rows deleted.
 */
export async function purgeOldVersions(db: DbExecutor, olderThanMs: number): Promise<number> {
  return deleteRevokedBefore(db, Math.floor(olderThanMs) * 1000);
}

export interface TaxiiServiceOptions {
  readonly behaviors?: BehaviorSource;
  /** `behaviors` for many IPs at once (publishMany); without it publishMany asks `behaviors` per IP. */
  readonly behaviorsMany?: (
    db: DbExecutor,
    ips: readonly string[],
  ) => Promise<Map<string, readonly IndicatorBehavior[]>>;
}

export interface VersionPage {
  readonly rows: readonly TaxiiPageRow[];
  readonly more: boolean;
}

export class TaxiiService {
  private ids: FeedIds | null = null;
  private readonly behaviors: BehaviorSource;
  private readonly behaviorsMany: TaxiiServiceOptions['behaviorsMany'];
  private readonly retentionMs: number;

  constructor(
    private readonly store: Store,
    private readonly config: Config,
    options: TaxiiServiceOptions = {},
  ) {
    this.behaviors = options.behaviors ?? NO_BEHAVIORS;
    this.behaviorsMany = options.behaviorsMany ?? (options.behaviors ? undefined : async () => new Map());
    this.retentionMs = config.retentionDays * DAY_MS;
  }

  /** Score threshold for the feed (VAKT_TAXII_SCORE_MINIMUM). */
  get scoreMinimum(): number {
    return this.config.taxiiScoreMinimum;
  }

  /**
   * Creates the collection id, Identity and TLP:CLEAR versions once, then revokes indicators of
   * IPs that are now allowlisted (the allowlist is config: it changes only with a restart).
   */
  async initialise(now: number): Promise<FeedIds> {
    const ids = await this.store.transaction((tx) => this.ensureFeed(tx, now));
    this.ids = ids.value;
    await this.revokeAllowlisted(now);
    return ids.value;
  }

  /** The feed ids; creates them on first use. */
  async feed(now: number): Promise<FeedIds> {
    if (this.ids) return this.ids;
    return this.initialise(now);
  }

  isAllowlisted(ipKey: Buffer): boolean {
    return this.config.allowlist.some((cidr) => cidrContains(cidr, ipKey));
  }

  /**
   * The score listener (ReputationScorer.onScoreChanged), inside the writing transaction: publishes
   * a first version when an IP enters the feed, a new version when its score changes while listed,
   * and a revoked version when it leaves (score below the threshold, or allowlisted).
   */
  async publish(tx: DbExecutor, row: ReputationRow, now: number): Promise<void> {
    const listed = row.score >= this.config.taxiiScoreMinimum && !this.isAllowlisted(row.ip_key);
    const latest = await latestVersionForIp(tx, row.ip);
    const live = latest && latest.revoked === 0 ? latest : undefined;
    const currentId = stixId('indicator', row.stix_id);
    if (!listed) {
      if (live) await revokeIndicator(tx, row.ip, now);
      return;
    }
    const confidence = Math.min(100, Math.max(0, Math.round(row.score)));
    if (live && live.stix_id === currentId && live.confidence === confidence) return;
    if (live && live.stix_id !== currentId) {
      // The reputation row was replaced without a revocation (purged and re-created): retire the old id.
      await revokeIndicator(tx, row.ip, now);
    }
    let uuid = row.stix_id;
    if (latest && latest.revoked === 1 && latest.stix_id === currentId) {
      uuid = randomUUID();
      await replaceReputationStixId(tx, row.ip, uuid);
    }
    const continuing = live !== undefined && live.stix_id === currentId;
    const nowMs = Math.floor(now);
    const createdMs = continuing ? Number(live.created_ms) : nowMs;
    const modifiedMs = continuing ? Math.max(nowMs, Number(live.modified_ms) + 1) : nowMs;
    const { identity } = await this.feedWithin(tx, now);
    const facts = await readIndicatorFacts(tx, row.ip, this.behaviors);
    const object = indicatorObject(
      {
        ip: row.ip,
        version: row.ip_version === 6 ? 6 : 4,
        stixId: uuid,
        created: createdMs,
        modified: modifiedMs,
        firstSeen: Number(row.first_seen),
        lastSeen: Number(row.last_seen),
        confidenceLevel: confidence,
        behaviors: facts.behaviors,
        categories: facts.categories,
      },
      { retentionMs: this.retentionMs, identityId: identity.id },
    );
    await insertVersion(tx, {
      stixId: object.id,
      objectType: 'indicator',
      ip: row.ip,
      dateAddedUs: await allocateDateAdded(tx, nowMs * 1000),
      createdMs,
      modifiedMs,
      confidence,
      revoked: false,
      object: JSON.stringify(object),
    });
  }

  /**
   * `publish` for many rows in one transaction (bulk rescoring), each IP at most once: the same versions,
   * in the same order and with the same `date_added` values as calling `publish` for each row in turn,
   * written with a few set statements (latest versions, categories and behaviours read in IN lists,
   * one clock move, multi-row inserts).
   */
  async publishMany(tx: DbExecutor, rows: readonly ReputationRow[], now: number): Promise<void> {
    if (rows.length === 0) return;
    const ips = rows.map((row) => row.ip);
    if (new Set(ips).size !== ips.length) throw new Error('publishMany takes each IP once');
    const latestByIp = await latestVersionsForIps(tx, ips);
    const nowMs = Math.floor(now);
    type Planned = Omit<NewVersion, 'dateAddedUs' | 'object'> & {
      readonly object: string | ((identityId: string) => string);
    };
    const planned: Planned[] = [];
    const revoke = (latest: TaxiiVersionRow) => {
      const modifiedMs = Math.max(nowMs, Number(latest.modified_ms) + 1);
      planned.push({
        stixId: latest.stix_id,
        objectType: latest.object_type,
        ip: latest.ip,
        createdMs: Number(latest.created_ms),
        modifiedMs,
        confidence: latest.confidence,
        revoked: true,
        object: revokedJson(latest.object, modifiedMs),
      });
    };
    const toPublish: {
      row: ReputationRow;
      uuid: string;
      createdMs: number;
      modifiedMs: number;
      confidence: number;
    }[] = [];
    for (const row of rows) {
      const listed = row.score >= this.config.taxiiScoreMinimum && !this.isAllowlisted(row.ip_key);
      const latest = latestByIp.get(row.ip);
      const live = latest && latest.revoked === 0 ? latest : undefined;
      const currentId = stixId('indicator', row.stix_id);
      if (!listed) {
        if (live) revoke(live);
        continue;
      }
      const confidence = Math.min(100, Math.max(0, Math.round(row.score)));
      if (live && live.stix_id === currentId && live.confidence === confidence) continue;
      if (live && live.stix_id !== currentId) revoke(live);
      let uuid = row.stix_id;
      if (latest && latest.revoked === 1 && latest.stix_id === currentId) {
        uuid = randomUUID();
        await replaceReputationStixId(tx, row.ip, uuid);
      }
      const continuing = live !== undefined && live.stix_id === currentId;
      const createdMs = continuing ? Number(live.created_ms) : nowMs;
      const modifiedMs = continuing ? Math.max(nowMs, Number(live.modified_ms) + 1) : nowMs;
      const entry = { row, uuid, createdMs, modifiedMs, confidence };
      toPublish.push(entry);
      planned.push({
        stixId: stixId('indicator', uuid),
        objectType: 'indicator',
        ip: row.ip,
        createdMs,
        modifiedMs,
        confidence,
        revoked: false,
        object: (identityId) => this.#indicatorJson(entry, facts, identityId),
      });
    }
    if (planned.length === 0) return;
    const published = toPublish.map((p) => p.row.ip);
    const categories = await categoryNamesMany(tx, published);
    const behaviors = this.behaviorsMany
      ? await this.behaviorsMany(tx, published)
      : new Map(await Promise.all(published.map(async (ip) => [ip, await this.behaviors(tx, ip)] as const)));
    const facts = (ip: string): IndicatorFacts => ({
      categories: categories.get(ip) ?? [],
      behaviors: behaviors.get(ip) ?? [],
    });
    const identityId = toPublish.length > 0 ? (await this.feedWithin(tx, now)).identity.id : '';
    const first = await allocateDateAddedBlock(tx, nowMs * 1000, planned.length);
    await insertVersions(
      tx,
      planned.map((version, index) => ({
        ...version,
        dateAddedUs: first + index,
        object: typeof version.object === 'string' ? version.object : version.object(identityId),
      })),
      // `tx` is a transaction of this store: on SQLite its one connection is the raw handle's.
      this.store.dialect === 'sqlite' ? this.store.sqlite : null,
    );
  }

  #indicatorJson(
    entry: { row: ReputationRow; uuid: string; createdMs: number; modifiedMs: number; confidence: number },
    facts: (ip: string) => IndicatorFacts,
    identityId: string,
  ): string {
    const { row } = entry;
    const { categories, behaviors } = facts(row.ip);
    const object = indicatorObject(
      {
        ip: row.ip,
        version: row.ip_version === 6 ? 6 : 4,
        stixId: entry.uuid,
        created: entry.createdMs,
        modified: entry.modifiedMs,
        firstSeen: Number(row.first_seen),
        lastSeen: Number(row.last_seen),
        confidenceLevel: entry.confidence,
        behaviors,
        categories,
      },
      { retentionMs: this.retentionMs, identityId },
    );
    return JSON.stringify(object);
  }

  /** One keyset page of versions (objects, manifest, or one object's versions). */
  async page(page: TaxiiPage): Promise<VersionPage> {
    const { match } = page;
    if (match.specVersion && !match.specVersion.includes(STIX_SPEC_VERSION)) return { rows: [], more: false };
    const v = match.version;
    // Exact `modified` times are ms in STIX; a µs value that is not a whole ms matches nothing.
    const modifiedMs = v.at.filter((us) => us % 1000 === 0).map((us) => us / 1000);
    if (!v.all && !v.first && !v.last && modifiedMs.length === 0) return { rows: [], more: false };
    const ids = match.id?.map((id) => {
      const parsed = parseStixId(id);
      return parsed ? `${parsed.type}--${parsed.uuid}` : id;
    });
    const rows = await listVersionRows(this.store.db, {
      ...(page.afterDateAdded !== undefined ? { afterUs: page.afterDateAdded } : {}),
      ...(page.offset ? { offset: page.offset } : {}),
      ...(ids ? { ids } : {}),
      ...(match.type ? { types: match.type.map((t) => t.toLowerCase()) } : {}),
      versions: { all: v.all, first: v.first, last: v.last, modifiedMs },
      take: page.limit + 1,
    });
    return { rows: rows.slice(0, page.limit), more: rows.length > page.limit };
  }

  /** A STIX id or a bare IP → the STIX id to serve, or null when this feed never published it. */
  async resolveObjectId(text: string): Promise<string | null> {
    const parsed = parseStixId(text.trim());
    if (parsed) {
      const id = `${parsed.type}--${parsed.uuid}`;
      return (await objectExists(this.store.db, id)) ? id : null;
    }
    const ip = parseIp(text);
    if (!ip.ok) return null;
    const latest = await latestVersionForIp(this.store.db, ip.ip.text);
    return latest ? latest.stix_id : null;
  }

  /** Publishes revoked versions for every listed IP inside the configured allowlist. */
  async revokeAllowlisted(now: number): Promise<number> {
    let revoked = 0;
    for (const cidr of this.config.allowlist) {
      for (const ip of await reputationIpsIn(this.store.db, cidr)) {
        if (await this.store.transaction((tx) => revokeIndicator(tx, ip, now))) revoked++;
      }
    }
    return revoked;
  }

  private async feedWithin(tx: DbExecutor, now: number): Promise<FeedIds> {
    if (this.ids) return this.ids;
    const ensured = await this.ensureFeed(tx, now);
    // Ids created inside a caller's transaction may still roll back; cache only ones already committed.
    if (ensured.existed) this.ids = ensured.value;
    return ensured.value;
  }

  private async ensureFeed(tx: DbExecutor, now: number): Promise<{ value: FeedIds; existed: boolean }> {
    await lockFeedClock(tx);
    const names = [SETTING_COLLECTION_ID, SETTING_IDENTITY_ID, SETTING_IDENTITY_CREATED];
    const read = async () =>
      new Map(
        (await tx.selectFrom('settings').select(['name', 'value']).where('name', 'in', names).execute()).map(
          (r) => [r.name, r.value],
        ),
      );
    let settings = await read();
    const existed = names.every((n) => settings.has(n));
    if (!existed) {
      const defaults: Record<string, string> = {
        [SETTING_COLLECTION_ID]: randomUUID(),
        [SETTING_IDENTITY_ID]: randomUUID(),
        [SETTING_IDENTITY_CREATED]: String(Math.floor(now)),
      };
      for (const name of names) {
        if (settings.has(name)) continue;
        await tx
          .insertInto('settings')
          .values({ name, value: defaults[name] ?? '' })
          .onConflict((oc) => oc.column('name').doNothing())
          .execute();
      }
      settings = await read();
    }
    const identity = identityObject({
      name: `Vakt threat feed (${new URL(this.config.publicUrl).host})`,
      publicUrl: this.config.publicUrl,
      identityId: settings.get(SETTING_IDENTITY_ID) ?? '',
      created: Number(settings.get(SETTING_IDENTITY_CREATED)),
    });
    const fixed: { id: string; type: string; created: string; json: string }[] = [
      {
        id: TLP_CLEAR_MARKING.id,
        type: TLP_CLEAR_MARKING.type,
        created: TLP_CLEAR_MARKING.created,
        json: JSON.stringify(TLP_CLEAR_MARKING),
      },
      { id: identity.id, type: identity.type, created: identity.created, json: JSON.stringify(identity) },
    ];
    for (const object of fixed) {
      if (await objectExists(tx, object.id)) continue;
      const createdMs = Date.parse(object.created);
      await insertVersion(tx, {
        stixId: object.id,
        objectType: object.type,
        ip: null,
        dateAddedUs: await allocateDateAdded(tx, Math.floor(now) * 1000),
        createdMs,
        modifiedMs: createdMs,
        confidence: null,
        revoked: false,
        object: object.json,
      });
    }
    return { value: { collectionId: settings.get(SETTING_COLLECTION_ID) ?? '', identity }, existed };
  }
}
