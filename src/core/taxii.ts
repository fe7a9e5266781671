// TAXII 2.1 protocol pieces with no I/O (SPEC §4): timestamps, opaque keyset cursors, Accept, query, errors.

import { createHash } from 'node:crypto';

export const TAXII_MEDIA_TYPE = 'application/taxii+json;version=2.1';
export const STIX_MEDIA_TYPE = 'application/stix+json;version=2.1';
export const TAXII_VERSIONS: readonly string[] = Object.freeze([TAXII_MEDIA_TYPE]);
export const TAXII_DATE_ADDED_FIRST_HEADER = 'X-TAXII-Date-Added-First';
export const TAXII_DATE_ADDED_LAST_HEADER = 'X-TAXII-Date-Added-Last';
export const TAXII_WWW_AUTHENTICATE = 'Basic realm="vakt"';
export const TAXII_DEFAULT_LIMIT = 100;
export const TAXII_MAX_LIMIT = 1000;

/** Result of parsing client input: a value or a reason fit for a 400 description. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

// ---------------------------------------------------------------------------------------------------
// Timestamps

// Tolerant RFC 3339: "T", "t" or space between date and time; optional seconds and fraction (any
// length); Z, ±HH:MM, ±HHMM, ±HH, or none (read as UTC, SPEC §2.5). A space before the offset is an
// unencoded "+" that the query-string decoder turned into a space ("…00:00:00+00:00" sent raw).
const TIMESTAMP_PATTERN =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(?:([Zz])|([+\- ])(\d{2})(?::?(\d{2}))?)?)?$/;

function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return isLeapYear(year) ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/**
 * Parses a TAXII/STIX timestamp into microseconds since the epoch: a safe integer, so years
 * 1685-2255 (others are refused as out of range). Fractions beyond microseconds are truncated.
 * Never throws.
 */
export function parseTaxiiTimestamp(text: string): Parsed<number> {
  const match = TIMESTAMP_PATTERN.exec(text.trim());
  if (!match) return { ok: false, reason: 'not an RFC 3339 timestamp such as 2026-01-02T03:04:05.123456Z' };
  const [, ys, mos, ds, hs, mis, ss, fraction, zulu, sign, ohs, oms] = match;
  const year = Number(ys);
  const month = Number(mos);
  const day = Number(ds);
  const hour = Number(hs ?? 0);
  const minute = Number(mis ?? 0);
  const second = Number(ss ?? 0);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) {
    return { ok: false, reason: 'the date does not exist' };
  }
  // Second 60 is a leap second; Date rolls it into the next minute, which is what ordering needs.
  if (hour > 23 || minute > 59 || second > 60)
    return { ok: false, reason: 'the time of day is out of range' };
  let offsetMinutes = 0;
  if (!zulu && sign !== undefined) {
    const offsetHours = Number(ohs);
    const offsetMins = Number(oms ?? 0);
    if (offsetHours > 23 || offsetMins > 59) return { ok: false, reason: 'the UTC offset is out of range' };
    offsetMinutes = (sign === '-' ? -1 : 1) * (offsetHours * 60 + offsetMins);
  }
  // Date.UTC maps years 0-99 to 1900-1999; setUTCFullYear does not.
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, 0);
  const subSecondMicros = fraction ? Number(fraction.slice(0, 6).padEnd(6, '0')) : 0;
  const micros = (date.getTime() - offsetMinutes * 60_000) * 1000 + subSecondMicros;
  if (!Number.isSafeInteger(micros)) return { ok: false, reason: 'the timestamp is out of range' };
  return { ok: true, value: micros };
}

/**
 * Microseconds since the epoch → `2026-01-02T03:04:05.123456Z` (always six fractional digits).
 * Safe integers only, i.e. years 1685-2255; anything else is a caller bug and throws.
 */
export function formatTaxiiTimestamp(micros: number): string {
  if (!Number.isSafeInteger(micros)) throw new RangeError(`not an integer epoch-µs timestamp: ${micros}`);
  const ms = Math.floor(micros / 1000);
  const subMilli = micros - ms * 1000;
  const iso = new Date(ms).toISOString(); // …SS.mmmZ
  return `${iso.slice(0, -1)}${String(subMilli).padStart(3, '0')}Z`;
}

// ---------------------------------------------------------------------------------------------------
// Query parameters

/** `match[version]`: several may be combined (`first,last`); `all` wins. Default is `last` only. */
export interface TaxiiVersionMatch {
  readonly all: boolean;
  readonly first: boolean;
  readonly last: boolean;
  /** Exact `modified` times, epoch µs. */
  readonly at: readonly number[];
}

export interface TaxiiMatch {
  readonly id?: readonly string[];
  readonly type?: readonly string[];
  readonly version: TaxiiVersionMatch;
  readonly specVersion?: readonly string[];
}

export interface TaxiiQuery {
  /** `added_after`, epoch µs, exclusive. */
  readonly addedAfter?: number;
  /** 1-1000; `TAXII_DEFAULT_LIMIT` when absent. */
  readonly limit: number;
  /** Whether the client sent `limit` (a cursor's page size applies only when it did not). */
  readonly limitGiven: boolean;
  /** Raw `next` token; decode with `resolveTaxiiPage`. */
  readonly next?: string;
  readonly offset?: number;
  readonly match: TaxiiMatch;
}

export type TaxiiQueryResult =
  | { ok: true; query: TaxiiQuery }
  | { ok: false; parameter: string; reason: string };

export const DEFAULT_VERSION_MATCH: TaxiiVersionMatch = Object.freeze({
  all: false,
  first: false,
  last: true,
  at: Object.freeze([]),
});

function percentDecode(text: string): string {
  if (!text.includes('%')) return text;
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** Every string value of a param, in order; null when a value is not a string (an object from qs). */
function stringValues(value: unknown): string[] | null {
  if (typeof value === 'string') return [percentDecode(value)];
  if (Array.isArray(value)) {
    const out: string[] = [];
    for (const item of value) {
      if (typeof item !== 'string') return null;
      out.push(percentDecode(item));
    }
    return out;
  }
  return null;
}

/** Splits comma lists, trims, drops empties and duplicates, keeps first-seen order. */
function listValues(values: readonly string[]): string[] {
  const out = new Set<string>();
  for (const value of values) {
    for (const part of value.split(',')) {
      const trimmed = part.trim();
      if (trimmed !== '') out.add(trimmed);
    }
  }
  return [...out];
}

function parseLimit(text: string): Parsed<number> {
  const trimmed = text.trim();
  if (!/^[+-]?\d+$/.test(trimmed)) return { ok: false, reason: 'limit must be a positive integer' };
  const digits = trimmed.replace(/^[+-]/, '').replace(/^0+(?=\d)/, '');
  if (trimmed.startsWith('-') || /^0+$/.test(digits))
    return { ok: false, reason: 'limit must be at least 1' };
  // Clamp before converting so absurdly long digit strings cannot lose precision or overflow.
  if (digits.length > 4) return { ok: true, value: TAXII_MAX_LIMIT };
  return { ok: true, value: Math.min(Number(digits), TAXII_MAX_LIMIT) };
}

function parseOffset(text: string): Parsed<number> {
  const trimmed = text.trim();
  if (!/^\+?\d+$/.test(trimmed)) return { ok: false, reason: 'offset must be a non-negative integer' };
  const value = Number(trimmed);
  if (!Number.isSafeInteger(value)) return { ok: false, reason: 'offset is too large' };
  return { ok: true, value };
}

function parseVersionMatch(values: readonly string[]): Parsed<TaxiiVersionMatch> {
  let all = false;
  let first = false;
  let last = false;
  const at: number[] = [];
  for (const value of values) {
    const keyword = value.toLowerCase();
    if (keyword === 'all') all = true;
    else if (keyword === 'first') first = true;
    else if (keyword === 'last') last = true;
    else {
      const time = parseTaxiiTimestamp(value);
      if (!time.ok) return { ok: false, reason: `"${value}" is not last, first, all or a timestamp` };
      if (!at.includes(time.value)) at.push(time.value);
    }
  }
  if (!all && !first && !last && at.length === 0) return { ok: true, value: DEFAULT_VERSION_MATCH };
  return { ok: true, value: { all, first, last, at } };
}

const SINGLE_PARAMS = new Set(['added_after', 'limit', 'next', 'offset']);
const MATCH_PARAMS = new Set(['match[id]', 'match[type]', 'match[version]', 'match[spec_version]']);

/**
 * Normalises a TAXII request's query object (SPEC §4). Keys may arrive decoded (`match[id]`) or
 * still percent-encoded in any case (`match%5Bid%5D`, `match%5bid%5d`); both spellings merge.
 * `match[…]` values may be comma lists or repeated params. A single-valued param repeated with
 * different values is an error; unknown params (such as `key`) are ignored. Never throws.
 */
export function parseTaxiiQuery(query: Readonly<Record<string, unknown>>): TaxiiQueryResult {
  const collected = new Map<string, string[]>();
  const entries: [string, unknown][] = [];
  for (const [rawKey, rawValue] of Object.entries(query)) {
    // A qs-style parser turns `match[id]=…` into `{ match: { id: … } }`; flatten it back.
    if (percentDecode(rawKey).trim() === 'match' && isRecord(rawValue)) {
      for (const [field, value] of Object.entries(rawValue)) entries.push([`match[${field}]`, value]);
    } else {
      entries.push([rawKey, rawValue]);
    }
  }
  for (const [rawKey, rawValue] of entries) {
    const key = percentDecode(rawKey).trim();
    if (!SINGLE_PARAMS.has(key) && !MATCH_PARAMS.has(key)) continue;
    const values = stringValues(rawValue);
    if (values === null) return { ok: false, parameter: key, reason: `${key} must be a string` };
    collected.set(key, [...(collected.get(key) ?? []), ...values]);
  }

  const single = (key: string): Parsed<string | undefined> => {
    const values = [...new Set(collected.get(key) ?? [])];
    if (values.length > 1)
      return { ok: false, reason: `${key} was given more than once with different values` };
    return { ok: true, value: values[0] };
  };

  const addedAfterText = single('added_after');
  if (!addedAfterText.ok) return { ok: false, parameter: 'added_after', reason: addedAfterText.reason };
  let addedAfter: number | undefined;
  if (addedAfterText.value !== undefined) {
    const parsed = parseTaxiiTimestamp(addedAfterText.value);
    if (!parsed.ok) return { ok: false, parameter: 'added_after', reason: parsed.reason };
    addedAfter = parsed.value;
  }

  const limitText = single('limit');
  if (!limitText.ok) return { ok: false, parameter: 'limit', reason: limitText.reason };
  let limit = TAXII_DEFAULT_LIMIT;
  if (limitText.value !== undefined) {
    const parsed = parseLimit(limitText.value);
    if (!parsed.ok) return { ok: false, parameter: 'limit', reason: parsed.reason };
    limit = parsed.value;
  }

  const offsetText = single('offset');
  if (!offsetText.ok) return { ok: false, parameter: 'offset', reason: offsetText.reason };
  let offset: number | undefined;
  if (offsetText.value !== undefined) {
    const parsed = parseOffset(offsetText.value);
    if (!parsed.ok) return { ok: false, parameter: 'offset', reason: parsed.reason };
    offset = parsed.value;
  }

  const nextText = single('next');
  if (!nextText.ok) return { ok: false, parameter: 'next', reason: nextText.reason };
  const next = nextText.value?.trim() || undefined;

  const ids = listValues(collected.get('match[id]') ?? []);
  const types = listValues(collected.get('match[type]') ?? []);
  const specVersions = listValues(collected.get('match[spec_version]') ?? []);
  const version = parseVersionMatch(listValues(collected.get('match[version]') ?? []));
  if (!version.ok) return { ok: false, parameter: 'match[version]', reason: version.reason };

  const match: TaxiiMatch = {
    ...(ids.length > 0 ? { id: ids } : {}),
    ...(types.length > 0 ? { type: types } : {}),
    version: version.value,
    ...(specVersions.length > 0 ? { specVersion: specVersions } : {}),
  };
  return {
    ok: true,
    query: {
      ...(addedAfter !== undefined ? { addedAfter } : {}),
      limit,
      limitGiven: limitText.value !== undefined,
      ...(next !== undefined ? { next } : {}),
      ...(offset !== undefined ? { offset } : {}),
      match,
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// Cursors

/**
 * Everything needed to continue a listing, so `next` alone is enough (case 012): the keyset
 * position after the last object returned, plus the query of the first page.
 */
export interface TaxiiCursor {
  /** `date_added` (epoch µs) of the last object already returned; the next page starts after it. */
  readonly afterDateAdded: number;
  /** Optional tie-breakers after `afterDateAdded`, for stores whose `date_added` may repeat. */
  readonly afterSeq?: number;
  readonly afterId?: string;
  /** The first request's `added_after` (informational; the position already implies it). */
  readonly addedAfter?: number;
  /** Page size to reuse when a follow-up request omits `limit`. */
  readonly limit?: number;
  /** The first request's filters; they stay in force for every page. */
  readonly match: TaxiiMatch;
}

const CURSOR_VERSION = '1';
const CURSOR_CHECK_DOMAIN = 'vakt-taxii-cursor-v1\n';
const MAX_CURSOR_LENGTH = 16_384;

interface CursorWire {
  a: number;
  s?: number;
  i?: string;
  aa?: number;
  l?: number;
  m: { id?: string[]; ty?: string[]; sv?: string[]; v?: { all?: 1; f?: 1; l?: 1; at?: number[] } };
}

function cursorCheck(payload: string): string {
  return createHash('sha256')
    .update(CURSOR_CHECK_DOMAIN)
    .update(payload)
    .digest()
    .subarray(0, 9)
    .toString('base64url');
}

/**
 * Encodes a cursor as `1.<base64url JSON>.<checksum>`: URL-safe, needs no escaping in a query
 * string. The checksum catches truncation and garbage, not forgery — a forged cursor can only
 * express a query the client could send directly, so no secret is needed.
 */
export function encodeCursor(cursor: TaxiiCursor): string {
  const { version } = cursor.match;
  const versionWire: NonNullable<CursorWire['m']['v']> = {
    ...(version.all ? { all: 1 as const } : {}),
    ...(version.first ? { f: 1 as const } : {}),
    ...(version.last ? { l: 1 as const } : {}),
    ...(version.at.length > 0 ? { at: [...version.at] } : {}),
  };
  const wire: CursorWire = {
    a: cursor.afterDateAdded,
    ...(cursor.afterSeq !== undefined ? { s: cursor.afterSeq } : {}),
    ...(cursor.afterId !== undefined ? { i: cursor.afterId } : {}),
    ...(cursor.addedAfter !== undefined ? { aa: cursor.addedAfter } : {}),
    ...(cursor.limit !== undefined ? { l: cursor.limit } : {}),
    m: {
      ...(cursor.match.id ? { id: [...cursor.match.id] } : {}),
      ...(cursor.match.type ? { ty: [...cursor.match.type] } : {}),
      ...(cursor.match.specVersion ? { sv: [...cursor.match.specVersion] } : {}),
      v: versionWire,
    },
  };
  if (!Number.isSafeInteger(wire.a)) throw new RangeError(`cursor position must be integer µs: ${wire.a}`);
  const payload = Buffer.from(JSON.stringify(wire), 'utf8').toString('base64url');
  return `${CURSOR_VERSION}.${payload}.${cursorCheck(payload)}`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function optionalStrings(value: unknown): string[] | undefined | null {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.length === 0) return null;
  return value.every((item) => typeof item === 'string') ? (value as string[]) : null;
}

function optionalInteger(value: unknown): number | undefined | null {
  if (value === undefined) return undefined;
  return Number.isSafeInteger(value) ? (value as number) : null;
}

/** Decodes a `next` token; any tampering, truncation or garbage gives a reason, never a throw. */
export function decodeCursor(text: string): Parsed<TaxiiCursor> {
  const invalid = { ok: false, reason: 'next is not a cursor this server issued' } as const;
  if (text.length > MAX_CURSOR_LENGTH) return invalid;
  const parts = text.trim().split('.');
  if (parts.length !== 3 || parts[0] !== CURSOR_VERSION) return invalid;
  const [, payload = '', check = ''] = parts;
  if (!/^[A-Za-z0-9_-]+$/.test(payload) || check !== cursorCheck(payload)) return invalid;
  let wire: unknown;
  try {
    wire = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    return invalid;
  }
  if (!isRecord(wire) || !isRecord(wire.m)) return invalid;
  const a = optionalInteger(wire.a);
  const s = optionalInteger(wire.s);
  const aa = optionalInteger(wire.aa);
  const l = optionalInteger(wire.l);
  const i = wire.i;
  if (a === undefined || a === null || s === null || aa === null || l === null) return invalid;
  if (l !== undefined && (l < 1 || l > TAXII_MAX_LIMIT)) return invalid;
  if (i !== undefined && typeof i !== 'string') return invalid;
  const ids = optionalStrings(wire.m.id);
  const types = optionalStrings(wire.m.ty);
  const specVersions = optionalStrings(wire.m.sv);
  if (ids === null || types === null || specVersions === null) return invalid;
  const v = wire.m.v;
  if (!isRecord(v)) return invalid;
  const at = v.at === undefined ? [] : v.at;
  if (!Array.isArray(at) || !at.every((t) => Number.isSafeInteger(t))) return invalid;
  const version: TaxiiVersionMatch = {
    all: v.all === 1,
    first: v.f === 1,
    last: v.l === 1,
    at: at as number[],
  };
  if (!version.all && !version.first && !version.last && version.at.length === 0) return invalid;
  return {
    ok: true,
    value: {
      afterDateAdded: a,
      ...(s !== undefined ? { afterSeq: s } : {}),
      ...(typeof i === 'string' ? { afterId: i } : {}),
      ...(aa !== undefined ? { addedAfter: aa } : {}),
      ...(l !== undefined ? { limit: l } : {}),
      match: {
        ...(ids ? { id: ids } : {}),
        ...(types ? { type: types } : {}),
        version,
        ...(specVersions ? { specVersion: specVersions } : {}),
      },
    },
  };
}

/** What the store should fetch for one page, after combining the query with its cursor. */
export interface TaxiiPage {
  /** Exclusive lower bound on `date_added` (epoch µs): the cursor position, else `added_after`. */
  readonly afterDateAdded?: number;
  readonly afterSeq?: number;
  readonly afterId?: string;
  /** The listing's original `added_after`, to carry into the next cursor. */
  readonly addedAfter?: number;
  readonly limit: number;
  /** Only without a cursor: a keyset position makes an offset meaningless. */
  readonly offset?: number;
  readonly match: TaxiiMatch;
  readonly fromCursor: boolean;
}

/**
 * Combines a parsed query with its `next` cursor (SPEC §4, case 012). With a cursor: its position
 * always wins over `added_after`; its filters stay in force whether the client re-sends, changes or
 * drops `match[…]`; `offset` is ignored; `limit` is the request's if given, else the cursor's.
 * Without one: `added_after` is the lower bound. Fails only on a cursor we did not issue.
 */
export function resolveTaxiiPage(query: TaxiiQuery): Parsed<TaxiiPage> {
  if (query.next === undefined) {
    return {
      ok: true,
      value: {
        ...(query.addedAfter !== undefined
          ? { afterDateAdded: query.addedAfter, addedAfter: query.addedAfter }
          : {}),
        limit: query.limit,
        ...(query.offset !== undefined ? { offset: query.offset } : {}),
        match: query.match,
        fromCursor: false,
      },
    };
  }
  const decoded = decodeCursor(query.next);
  if (!decoded.ok) return decoded;
  const cursor = decoded.value;
  return {
    ok: true,
    value: {
      afterDateAdded: cursor.afterDateAdded,
      ...(cursor.afterSeq !== undefined ? { afterSeq: cursor.afterSeq } : {}),
      ...(cursor.afterId !== undefined ? { afterId: cursor.afterId } : {}),
      ...(cursor.addedAfter !== undefined ? { addedAfter: cursor.addedAfter } : {}),
      limit: query.limitGiven ? query.limit : (cursor.limit ?? query.limit),
      match: cursor.match,
      fromCursor: true,
    },
  };
}

/** The `next` token for the page after `page`, positioned after its last object. */
export function nextCursor(
  page: TaxiiPage,
  last: { readonly dateAdded: number; readonly seq?: number; readonly id?: string },
): string {
  return encodeCursor({
    afterDateAdded: last.dateAdded,
    ...(last.seq !== undefined ? { afterSeq: last.seq } : {}),
    ...(last.id !== undefined ? { afterId: last.id } : {}),
    ...(page.addedAfter !== undefined ? { addedAfter: page.addedAfter } : {}),
    limit: page.limit,
    match: page.match,
  });
}

// ---------------------------------------------------------------------------------------------------
// Accept

interface MediaRange {
  readonly type: string;
  readonly subtype: string;
  readonly params: ReadonlyMap<string, string>;
  readonly q: number;
}

/** Splits on a separator outside double quotes. */
function splitOutsideQuotes(text: string, separator: string): string[] {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (let index = 0; index < text.length; index++) {
    const char = text[index];
    if (char === '"') quoted = !quoted;
    if (char === separator && !quoted) {
      parts.push(current);
      current = '';
    } else {
      current += char;
    }
  }
  parts.push(current);
  return parts;
}

function parseMediaRange(text: string): MediaRange | null {
  const [range = '', ...rawParams] = splitOutsideQuotes(text, ';');
  const slash = range.trim().toLowerCase().split('/');
  if (slash.length !== 2 || !slash[0] || !slash[1]) return null;
  const params = new Map<string, string>();
  let q = 1;
  for (const raw of rawParams) {
    const equals = raw.indexOf('=');
    if (equals < 0) continue;
    const name = raw.slice(0, equals).trim().toLowerCase();
    const value = raw
      .slice(equals + 1)
      .trim()
      .replace(/^"(.*)"$/, '$1');
    if (name === 'q') {
      const parsed = Number(value);
      q = Number.isFinite(parsed) && parsed >= 0 && parsed <= 1 ? parsed : 1;
    } else {
      params.set(name, value);
    }
  }
  return { type: slash[0].trim(), subtype: slash[1].trim(), params, q };
}

function acceptsTaxii21(range: MediaRange): boolean {
  if (range.q <= 0) return false;
  if (range.type === '*' && range.subtype === '*') return true;
  if (range.type !== 'application') return false;
  if (range.subtype === '*') return true;
  if (range.subtype !== 'taxii+json') return false;
  const version = range.params.get('version');
  return version === undefined || version === '2.1';
}

/**
 * Decides whether a TAXII 2.1 response satisfies the request's Accept header (SPEC §4): missing,
 * `*∕*`, `application/*`, bare `application/taxii+json` and `…;version=2.1` are fine, in any case,
 * with q-values, spaces and several entries; only explicit other types or versions → 406.
 */
export function parseAccept(header: string | readonly string[] | undefined): Parsed<typeof TAXII_MEDIA_TYPE> {
  const text = typeof header === 'string' ? header : (header ?? []).join(',');
  if (text.trim() === '') return { ok: true, value: TAXII_MEDIA_TYPE };
  for (const entry of splitOutsideQuotes(text, ',')) {
    if (entry.trim() === '') continue;
    const range = parseMediaRange(entry);
    if (range && acceptsTaxii21(range)) return { ok: true, value: TAXII_MEDIA_TYPE };
  }
  return { ok: false, reason: `this server only produces ${TAXII_MEDIA_TYPE}` };
}

// ---------------------------------------------------------------------------------------------------
// Errors

/** TAXII 2.1 error message (TAXII 2.1 §3.6.1); `http_status` is a string there, not a number. */
export interface TaxiiErrorResource {
  readonly title: string;
  readonly description?: string;
  readonly error_id?: string;
  readonly error_code?: string;
  readonly http_status: string;
  readonly details?: Readonly<Record<string, string>>;
}

export interface TaxiiErrorInput {
  readonly httpStatus: number;
  readonly title: string;
  readonly description?: string;
  /** The stable code from SPEC §2.2, e.g. `invalid_parameter`. */
  readonly errorCode?: string;
  /** Request id, so an operator can find the log line. */
  readonly errorId?: string;
  readonly details?: Readonly<Record<string, string>>;
}

export function taxiiError(input: TaxiiErrorInput): TaxiiErrorResource {
  return {
    title: input.title,
    ...(input.description !== undefined ? { description: input.description } : {}),
    ...(input.errorId !== undefined ? { error_id: input.errorId } : {}),
    ...(input.errorCode !== undefined ? { error_code: input.errorCode } : {}),
    http_status: String(input.httpStatus),
    ...(input.details !== undefined ? { details: input.details } : {}),
  };
}
