// Blacklist queries (SPEC §3.2): filters, ordering, a content fingerprint for the ETag, keyset pages for streaming.
import type BetterSqlite3 from 'better-sqlite3';
import { type ExpressionBuilder, type SelectQueryBuilder, sql } from 'kysely';
import type { Database, DbExecutor } from './database.js';

export interface BlacklistFilter {
  /** Minimum confidence (inclusive) on `score`, or on `score_raw` when `ignoreWhitelist`. */
  readonly scoreMinimum: number;
  readonly ignoreWhitelist: boolean;
  readonly ipVersion: 4 | 6 | null;
  /** Upper-case ISO-2 codes. */
  readonly onlyCountries: readonly string[] | null;
  readonly exceptCountries: readonly string[] | null;
  /** Digits only. */
  readonly onlyAsn: readonly string[] | null;
  readonly exceptAsn: readonly string[] | null;
  /** Lower-case protocol names: listed when the IP was seen on at least one of them. */
  readonly protocols: readonly string[] | null;
  /** 0-4 against `reputations.max_severity`. */
  readonly minSeverity: number | null;
  /** Inclusive 16-byte key ranges never listed (the operator allowlist). */
  readonly excludedKeyRanges: readonly { readonly first: Buffer; readonly last: Buffer }[];
}

/** Which evidence-side schema is present (columns and tables added by the evidence work). */
export interface BlacklistSchema {
  readonly hasMaxSeverity: boolean;
  readonly hasProtocols: boolean;
}

export interface BlacklistRow {
  readonly ip: string;
  readonly ip_key: Buffer;
  readonly ip_version: number;
  readonly score: number;
  readonly last_seen: number;
  readonly sessions: number;
  readonly country_code: string | null;
  readonly asn: string | null;
  readonly asn_org: string | null;
}

/** Aggregates over exactly the rows a list of a given length holds; any change to them changes these. */
export interface BlacklistFingerprint {
  readonly count: number;
  readonly maxScoreUpdatedAt: number;
  readonly maxLastSeen: number;
  readonly sumScore: number;
  readonly sumSessions: number;
  readonly sumEnrichment: number;
}

// Reads the schema once per executor class instance: evidence columns may not exist yet (older schema).
export async function detectBlacklistSchema(db: DbExecutor): Promise<BlacklistSchema> {
  const tables = await db.introspection.getTables();
  const reputations = tables.find((t) => t.name === 'reputations');
  return {
    hasMaxSeverity: reputations?.columns.some((c) => c.name === 'max_severity') ?? false,
    hasProtocols: tables.some((t) => t.name === 'reputation_protocols'),
  };
}

type Rep = ExpressionBuilder<Database, 'reputations'>;

function scoreColumn(filter: BlacklistFilter) {
  return filter.ignoreWhitelist ? ('score_raw' as const) : ('score' as const);
}

function filtered(db: DbExecutor, filter: BlacklistFilter, schema: BlacklistSchema) {
  const column = scoreColumn(filter);
  let query: SelectQueryBuilder<Database, 'reputations', object> = db
    .selectFrom('reputations')
    .where(column, '>=', filter.scoreMinimum);
  if (filter.ipVersion !== null) query = query.where('ip_version', '=', filter.ipVersion);
  if (filter.onlyCountries) query = query.where('country_code', 'in', [...filter.onlyCountries, '']);
  if (filter.exceptCountries) {
    const except = filter.exceptCountries;
    query = query.where((eb: Rep) =>
      eb.or([eb('country_code', 'is', null), eb('country_code', 'not in', [...except])]),
    );
  }
  if (filter.onlyAsn) query = query.where('asn', 'in', [...filter.onlyAsn, '']);
  if (filter.exceptAsn) {
    const except = filter.exceptAsn;
    query = query.where((eb: Rep) => eb.or([eb('asn', 'is', null), eb('asn', 'not in', [...except])]));
  }
  if (filter.minSeverity !== null && filter.minSeverity > 0) {
    // Without the column nothing has a known severity, so nothing meets a positive minimum.
    query = schema.hasMaxSeverity
      ? query.where(sql.ref('max_severity'), '>=', filter.minSeverity)
      : query.where(sql.lit(1), '=', 0);
  }
  if (filter.protocols) {
    const protocols = filter.protocols;
    query = schema.hasProtocols
      ? query.where(({ exists }) =>
          exists(
            sql`(select 1 from reputation_protocols rp where rp.ip = reputations.ip and rp.protocol in (${sql.join(protocols)}))`,
          ),
        )
      : query.where(sql.lit(1), '=', 0);
  }
  for (const range of filter.excludedKeyRanges) {
    query = query.where((eb: Rep) => eb.or([eb('ip_key', '<', range.first), eb('ip_key', '>', range.last)]));
  }
  return query;
}

/** The newest rescore of any reputation (an index probe): a change anywhere changes the ETag. */
export async function newestRescore(db: DbExecutor): Promise<number> {
  const row = await db
    .selectFrom('reputations')
    .select((eb) => eb.fn.max('score_updated_at').as('newest'))
    .executeTakeFirst();
  return Number(row?.newest ?? 0);
}

/**
 * Fingerprint and count of the first `limit` rows in list order. With `addressesOnly` (formats that
 * show addresses only) it reads just the list index: count, scores, last-seen times and address text.
 */
export async function blacklistFingerprint(
  db: DbExecutor,
  filter: BlacklistFilter,
  schema: BlacklistSchema,
  limit: number,
  addressesOnly = false,
): Promise<BlacklistFingerprint> {
  const column = scoreColumn(filter);
  const base = filtered(db, filter, schema);
  const inner = (
    addressesOnly
      ? base.select([
          `${column} as score`,
          sql<number>`0`.as('score_updated_at'),
          'last_seen',
          sql<number>`0`.as('sessions'),
          // octet_length: the same number for ASCII text, without counting characters (SQLite ≥ 3.43, PostgreSQL).
          sql<number>`octet_length(ip)`.as('enrichment'),
        ])
      : base.select([
          `${column} as score`,
          'score_updated_at',
          'last_seen',
          'sessions',
          sql<number>`length(coalesce(country_code, '') || coalesce(asn, '') || coalesce(asn_org, ''))`.as(
            'enrichment',
          ),
        ])
  )
    .orderBy(column, 'desc')
    .orderBy('last_seen', 'desc')
    .orderBy('ip', 'desc')
    .limit(limit)
    .as('listed');
  const row = await db
    .selectFrom(inner)
    .select((eb) => [
      eb.fn.countAll<number>().as('count'),
      eb.fn.max('listed.score_updated_at').as('max_updated'),
      eb.fn.max('listed.last_seen').as('max_last_seen'),
      eb.fn.sum<number>('listed.score').as('sum_score'),
      eb.fn.sum<number>('listed.sessions').as('sum_sessions'),
      eb.fn.sum<number>('listed.enrichment').as('sum_enrichment'),
    ])
    .executeTakeFirstOrThrow();
  return {
    count: Number(row.count),
    maxScoreUpdatedAt: addressesOnly ? await newestRescore(db) : Number(row.max_updated ?? 0),
    maxLastSeen: Number(row.max_last_seen ?? 0),
    sumScore: Number(row.sum_score ?? 0),
    sumSessions: Number(row.sum_sessions ?? 0),
    sumEnrichment: Number(row.sum_enrichment ?? 0),
  };
}

/** True when more than `count` rows qualify (the list was cut there). */
export async function qualifiesBeyond(
  db: DbExecutor,
  filter: BlacklistFilter,
  schema: BlacklistSchema,
  count: number,
): Promise<boolean> {
  const column = scoreColumn(filter);
  const row = await filtered(db, filter, schema)
    .select('ip')
    .orderBy(column, 'desc')
    .orderBy('last_seen', 'desc')
    .orderBy('ip', 'desc')
    .offset(count)
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

/** A row's place in list order: (score, lastSeen, ip), all descending. */
export type Keyset = { readonly score: number; readonly lastSeen: number; readonly ip: string };

/**
 * A place in list order between rows: the rows strictly before it are those with (score, lastSeen)
 * greater than (score, lastSeen). Feed CIDR entries sit at such places (decision 0703).
 */
export type ListBound = { readonly score: number; readonly lastSeen: number };

/** Where a page read starts (after `after`) and stops (before `bound`); both null = the whole list. */
export interface ListWindow {
  readonly after: Keyset | null;
  readonly bound: ListBound | null;
}

const WHOLE_LIST: ListWindow = { after: null, bound: null };

// One keyset page in list order: the rows after `after` (or from the top), before `bound` (if any).
function pageQuery(
  db: DbExecutor,
  filter: BlacklistFilter,
  schema: BlacklistSchema,
  columns: readonly string[],
  after: Keyset | null,
  limit: number,
  bound: ListBound | null = null,
) {
  const column = scoreColumn(filter);
  let query = filtered(db, filter, schema).select(columns as unknown as 'ip'[]);
  if (bound) query = beforeBound(query, column, bound);
  if (after) {
    const { score, lastSeen, ip } = after;
    // The row-value comparison says exactly where the page starts; the plain bound on the score lets
    // SQLite's planner start the index range there too (without it SQLite walks the index from the top
    // on every page, which made a 350k list quadratic). PostgreSQL uses either.
    query = query
      .where(column, '<=', score)
      .where((eb: Rep) => eb(eb.refTuple(column, 'last_seen', 'ip'), '<', eb.tuple(score, lastSeen, ip)));
  }
  return query.orderBy(column, 'desc').orderBy('last_seen', 'desc').orderBy('ip', 'desc').limit(limit);
}

// Rows strictly before `bound` in list order; the plain bound on the score lets SQLite end the index range.
function beforeBound<Q extends SelectQueryBuilder<Database, 'reputations', object>>(
  query: Q,
  column: 'score' | 'score_raw',
  bound: ListBound,
): Q {
  return query
    .where(column, '>=', bound.score)
    .where((eb: Rep) =>
      eb(eb.refTuple(column, 'last_seen'), '>', eb.tuple(bound.score, bound.lastSeen)),
    ) as Q;
}

/**
 * How many rows (at most `cap`) come before `bound` in list order: the place of a feed CIDR entry
 * among the rows (decision 0703). An index range read of at most `cap` entries.
 */
export async function rowsBefore(
  db: DbExecutor,
  filter: BlacklistFilter,
  schema: BlacklistSchema,
  bound: ListBound,
  cap: number,
): Promise<number> {
  const column = scoreColumn(filter);
  const inner = beforeBound(filtered(db, filter, schema), column, bound)
    .select('ip')
    .orderBy(column, 'desc')
    .orderBy('last_seen', 'desc')
    .orderBy('ip', 'desc')
    .limit(cap)
    .as('before');
  const row = await db
    .selectFrom(inner)
    .select((eb) => eb.fn.countAll<number>().as('count'))
    .executeTakeFirstOrThrow();
  return Number(row.count);
}

/**
 * The first `limit` rows in list order (confidence desc, lastSeen desc, ip desc as a stable tie-break),
 * in pages of `pageSize` by keyset: each page is one indexed range read, so memory stays one page.
 * Exact only inside a snapshot (Store.readSnapshot), where no row can move between pages.
 */
export async function* blacklistPages(
  db: DbExecutor,
  filter: BlacklistFilter,
  schema: BlacklistSchema,
  limit: number,
  pageSize = 5000,
  addressesOnly = false,
  /** Start after `window.after` and stop before `window.bound` (the limit still applies). */
  window: ListWindow = WHOLE_LIST,
): AsyncGenerator<BlacklistRow[]> {
  const column = scoreColumn(filter);
  let remaining = limit;
  let after: Keyset | null = window.after;
  // Formats that show only addresses read nothing but the list index's own columns (no table look-up
  // per row); the other fields are left empty.
  const columns = addressesOnly
    ? ['ip', `${column} as score`, 'last_seen']
    : [
        'ip',
        'ip_key',
        'ip_version',
        `${column} as score`,
        'last_seen',
        'sessions',
        'country_code',
        'asn',
        'asn_org',
      ];
  while (remaining > 0) {
    const rows = (await pageQuery(
      db,
      filter,
      schema,
      columns,
      after,
      Math.min(pageSize, remaining),
      window.bound,
    ).execute()) as BlacklistRow[];
    if (addressesOnly) {
      for (const row of rows as { -readonly [K in keyof BlacklistRow]: BlacklistRow[K] }[]) {
        row.ip_version = row.ip.includes(':') ? 6 : 4;
        row.sessions = 0;
        row.country_code = null;
        row.asn = null;
        row.asn_org = null;
      }
    }
    if (rows.length === 0) return;
    remaining -= rows.length;
    yield rows;
    const last = rows[rows.length - 1];
    if (!last || rows.length < Math.min(pageSize, remaining + rows.length)) return;
    after = { score: last.score, lastSeen: last.last_seen, ip: last.ip };
  }
}

/** One page of listed addresses as text: `count` addresses joined by "\n" (no final newline). */
export interface AddressPage {
  readonly text: string;
  readonly count: number;
  /** The keyset of the page's last row (from `sqliteAddressPages` when asked for a window). */
  readonly last?: Keyset;
}

/**
 * SQLite only: the addresses of the first `limit` rows in list order, as `blacklistPages` with
 * `addressesOnly` lists them, in pages of `pageSize` — read with raw prepared statements on the
 * snapshot's own connection, each page as ONE string built by SQLite (`group_concat` over the page
 * query), so no JavaScript string or object is made per row. SQLite feeds an aggregate over an ORDER
 * BY … LIMIT subquery in the subquery's order (the subquery cannot be flattened into an aggregate, so it
 * runs as a co-routine in index order); `test/blacklist-raw-sqlite.test.ts` checks the bytes against
 * `blacklistPages`. Each page is one synchronous statement run to completion, so no statement stays open
 * while the caller awaits. `db` (the snapshot's Kysely view of the same connection) only builds and
 * compiles the SQL; the keyset of a page's last address is one primary-key probe.
 */
export function* sqliteAddressPages(
  sqlite: BetterSqlite3.Database,
  db: DbExecutor,
  filter: BlacklistFilter,
  schema: BlacklistSchema,
  limit: number,
  pageSize = 20_000,
  /** Start after `window.after`, stop before `window.bound`; with a window every page carries `last`. */
  window: ListWindow | null = null,
): Generator<AddressPage> {
  const column = scoreColumn(filter);
  const probe = sqlite.prepare(`select ${column}, last_seen from reputations where ip = ?`).raw();
  const keysetOf = (text: string): Keyset => {
    const last = text.slice(text.lastIndexOf('\n') + 1);
    const key = probe.get(last) as [number, number] | undefined;
    if (!key) throw new Error('blacklist keyset row vanished inside the snapshot');
    return { score: key[0], lastSeen: key[1], ip: last };
  };
  let remaining = limit;
  let after: Keyset | null = window?.after ?? null;
  const bound = window?.bound ?? null;
  while (remaining > 0) {
    const want = Math.min(pageSize, remaining);
    const compiled = pageQuery(db, filter, schema, ['ip'], after, want, bound).compile();
    const [text, count] = sqlite
      .prepare(`select group_concat(ip, char(10)), count(*) from (${compiled.sql})`)
      .raw()
      .get(...compiled.parameters) as [string | null, number];
    if (count === 0 || text === null) return;
    remaining -= count;
    if (window) {
      after = keysetOf(text);
      yield { text, count, last: after };
      if (count < want || remaining === 0) return;
      continue;
    }
    yield { text, count };
    if (count < want || remaining === 0) return;
    after = keysetOf(text);
  }
}

/** Protocol names per IP, busiest first (empty when the evidence tables are absent). */
export async function protocolsFor(
  db: DbExecutor,
  schema: BlacklistSchema,
  ips: readonly string[],
): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  if (!schema.hasProtocols || ips.length === 0) return out;
  const result = await sql<{ ip: string; protocol: string }>`select ip, protocol from reputation_protocols
    where ip in (${sql.join(ips)}) order by ip, sessions desc, protocol`.execute(db);
  for (const row of result.rows) {
    const list = out.get(row.ip);
    if (list) list.push(row.protocol);
    else out.set(row.ip, [row.protocol]);
  }
  return out;
}
