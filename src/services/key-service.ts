// API keys: creation (secret shown once), listing, disabling, rotation and authentication (SPEC §2.1).
import { displayPrefix, generateApiKey, hashApiKey, parseApiKey, randomBase62 } from '../core/api-key.js';
import { type Failure, failure } from '../core/errors.js';
import { COUNTERS, type Counter, type Tier, type TierId } from '../core/tiers.js';
import type { Clock } from '../core/time.js';
import type { DbExecutor } from '../store/database.js';
import {
  type ApiKeyRow,
  countKeys,
  findKeyByHash,
  findKeyById,
  insertKey,
  listKeys,
  replaceKeyHash,
  setKeyDisabled,
} from '../store/keys-repository.js';
import type { Store } from '../store/store.js';

/** A key that passed authentication, with its effective daily limits. */
export interface AuthenticatedKey {
  readonly id: string;
  readonly tier: Tier;
  readonly limits: Readonly<Record<Counter, number | null>>;
  readonly createdAt: number;
  readonly trust: number | null;
}

export interface CreatedKey {
  id: string;
  key: string;
  tier: TierId;
}

export interface KeySummary {
  id: string;
  name: string | null;
  tier: TierId;
  prefix: string;
  createdAt: number;
  expiresAt: number | null;
  disabled: boolean;
  quotaOverrides: Partial<Record<Counter, number>>;
}

export interface CreateKeyOptions {
  tier: TierId;
  name?: string | null;
  quotaOverrides?: Partial<Record<Counter, number>>;
  expiresAt?: number | null;
  trust?: number | null;
}

function parseOverrides(json: string | null): Partial<Record<Counter, number>> {
  if (!json) return {};
  const parsed = JSON.parse(json) as Record<string, unknown>;
  const out: Partial<Record<Counter, number>> = {};
  for (const counter of COUNTERS) {
    const value = parsed[counter];
    if (typeof value === 'number') out[counter] = value;
  }
  return out;
}

/**
 * How long a looked-up key row is reused before the database is asked again. Changes made through this
 * process (disable, rotate) take effect at once; changes made by another process within this time.
 */
export const KEY_CACHE_TTL_MS = 2_000;
const KEY_CACHE_CAPACITY = 10_000;

type Authentication = { ok: true; key: AuthenticatedKey } | Failure;

export class KeyService {
  private readonly cache = new Map<string, { row: ApiKeyRow | undefined; until: number }>();
  /**
   * Successful authentications by presented secret, for the same TTL as the row cache: a hit skips
   * the SHA-256 and the limits computation. Only the expiry is re-checked on every use.
   */
  private readonly presentedCache = new Map<
    string,
    { auth: { ok: true; key: AuthenticatedKey }; expiresAt: number | null; until: number }
  >();

  constructor(
    private readonly store: Store,
    private readonly tiers: Readonly<Record<TierId, Tier>>,
    private readonly clock: Clock,
  ) {}

  private async rowForHash(keyHash: string): Promise<ApiKeyRow | undefined> {
    const now = Date.now();
    const hit = this.cache.get(keyHash);
    if (hit && hit.until > now) return hit.row;
    const row = await findKeyByHash(this.store.db, keyHash);
    if (this.cache.size >= KEY_CACHE_CAPACITY) this.cache.clear();
    // Unknown keys are not cached: a flood of random keys must not evict real ones.
    if (row) this.cache.set(keyHash, { row, until: now + KEY_CACHE_TTL_MS });
    return row;
  }

  async create(options: CreateKeyOptions, executor: DbExecutor = this.store.db): Promise<CreatedKey> {
    const key = generateApiKey(options.tier);
    const id = `key_${randomBase62(12)}`;
    await insertKey(executor, {
      id,
      name: options.name ?? null,
      tier: options.tier,
      key_hash: hashApiKey(key),
      display_prefix: displayPrefix(key),
      quota_overrides:
        options.quotaOverrides && Object.keys(options.quotaOverrides).length > 0
          ? JSON.stringify(options.quotaOverrides)
          : null,
      trust: options.trust ?? null,
      created_at: this.clock.now(),
      expires_at: options.expiresAt ?? null,
      disabled_at: null,
    });
    return { id, key, tier: options.tier };
  }

  async list(): Promise<KeySummary[]> {
    const rows = await listKeys(this.store.db);
    return rows.map((row) => ({
      id: row.id,
      name: row.name,
      tier: row.tier as TierId,
      prefix: row.display_prefix,
      createdAt: Number(row.created_at),
      expiresAt: row.expires_at === null ? null : Number(row.expires_at),
      disabled: row.disabled_at !== null,
      quotaOverrides: parseOverrides(row.quota_overrides),
    }));
  }

  /** Disables a key at once; returns false when no key has that id. */
  async disable(id: string): Promise<boolean> {
    this.cache.clear();
    this.presentedCache.clear();
    return setKeyDisabled(this.store.db, id, this.clock.now());
  }

  /** Replaces a key's secret (same id, tier, quotas and usage); the old secret stops working. */
  async rotate(id: string): Promise<CreatedKey | null> {
    const row = await findKeyById(this.store.db, id);
    if (!row) return null;
    const key = generateApiKey(row.tier as TierId);
    this.cache.clear();
    this.presentedCache.clear();
    const updated = await replaceKeyHash(this.store.db, id, hashApiKey(key), displayPrefix(key));
    return updated ? { id, key, tier: row.tier as TierId } : null;
  }

  /**
   * On the first `serve` of a database, creates one unlimited operator key and returns it; null on every
   * later start. Safe when several instances start at once: a settings row claims the first start.
   */
  async createFirstOperatorKey(): Promise<CreatedKey | null> {
    return this.store.transaction(async (tx) => {
      const claimed = await tx
        .insertInto('settings')
        .values({ name: 'first_operator_key_at', value: String(this.clock.now()) })
        .onConflict((oc) => oc.column('name').doNothing())
        .executeTakeFirst();
      if (Number(claimed.numInsertedOrUpdatedRows ?? 0) === 0) return null;
      return this.create({ tier: 'unlimited', name: 'operator (created at first start)' }, tx);
    });
  }

  /**
   * The operator's local reporter for importers (SPEC §7: "reports from a local reporter"): the
   * enabled `unlimited` key named `name`, created on first use. Its secret is never shown; it only
   * attributes imported reports.
   */
  async localReporter(name: string): Promise<AuthenticatedKey> {
    const find = async () =>
      (await listKeys(this.store.db)).find(
        (row) => row.name === name && row.tier === 'unlimited' && row.disabled_at === null,
      );
    let row = await find();
    if (!row) {
      await this.create({ tier: 'unlimited', name });
      row = await find();
    }
    if (!row) throw new Error(`could not create the local reporter key "${name}"`);
    const checked = this.check(row);
    if (!checked.ok) throw new Error(`local reporter key "${name}": ${checked.message}`);
    return checked.key;
  }

  /** True when no key exists yet (first start). */
  async isEmpty(): Promise<boolean> {
    return (await countKeys(this.store.db)) === 0;
  }

  /** Resolves a presented key: 401 codes for missing/malformed/unknown, 403 for disabled/expired. */
  async authenticate(presented: string | null): Promise<Authentication> {
    const cached = this.cachedAuthentication(presented);
    if (cached) return cached;
    if (presented === null || presented === '') {
      return failure(
        'missing_api_key',
        'An API key is required: send "Authorization: Bearer <key>" (GET requests may also use ?key=<key>).',
      );
    }
    if (!parseApiKey(presented)) return failure('invalid_api_key', 'The API key is malformed.');
    const row = await this.rowForHash(hashApiKey(presented));
    if (!row) return failure('invalid_api_key', 'The API key is not known.');
    const result = this.check(row);
    if (result.ok) {
      if (this.presentedCache.size >= KEY_CACHE_CAPACITY) this.presentedCache.clear();
      this.presentedCache.set(presented, {
        auth: { ok: true, key: result.key },
        expiresAt: row.expires_at === null ? null : Number(row.expires_at),
        until: Date.now() + KEY_CACHE_TTL_MS,
      });
    }
    return result;
  }

  /**
   * The answer for a key authenticated successfully within the cache TTL, without touching the store
   * (synchronous, for the request hot path); undefined when the slow path must run.
   */
  cachedAuthentication(presented: string | null): Authentication | undefined {
    if (presented === null) return undefined;
    const hit = this.presentedCache.get(presented);
    if (hit === undefined || hit.until <= Date.now()) return undefined;
    if (hit.expiresAt !== null && hit.expiresAt <= this.clock.now()) return undefined;
    return hit.auth;
  }

  private check(row: ApiKeyRow): { ok: true; key: AuthenticatedKey } | Failure {
    if (row.disabled_at !== null) return failure('key_disabled', 'This API key has been disabled.');
    if (row.expires_at !== null && Number(row.expires_at) <= this.clock.now()) {
      return failure('key_expired', 'This API key has expired.');
    }
    const tier = this.tiers[row.tier as TierId];
    if (!tier) return failure('invalid_api_key', 'The API key has an unknown tier.');
    const overrides = parseOverrides(row.quota_overrides);
    const limits = { ...tier.limits, ...overrides };
    return {
      ok: true,
      key: { id: row.id, tier, limits, createdAt: Number(row.created_at), trust: row.trust },
    };
  }
}
