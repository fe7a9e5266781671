import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DEFAULT_VERSION_MATCH,
  decodeCursor,
  encodeCursor,
  formatTaxiiTimestamp,
  nextCursor,
  parseAccept,
  parseTaxiiQuery,
  parseTaxiiTimestamp,
  resolveTaxiiPage,
  type TaxiiCursor,
  type TaxiiPage,
  type TaxiiQuery,
  taxiiError,
} from './taxii.js';

const BASE_MS = Date.UTC(2026, 0, 2, 3, 4, 5);
const BASE = BASE_MS * 1000;

function micros(text: string): number {
  const parsed = parseTaxiiTimestamp(text);
  assert.ok(parsed.ok, `${text} should parse`);
  return parsed.value;
}

function query(params: Record<string, unknown>): TaxiiQuery {
  const parsed = parseTaxiiQuery(params);
  assert.ok(parsed.ok, `query should parse: ${JSON.stringify(parsed)}`);
  return parsed.query;
}

describe('parseTaxiiTimestamp', () => {
  it('reads Z, millisecond, microsecond and longer fractions', () => {
    assert.equal(micros('2026-01-02T03:04:05Z'), BASE);
    assert.equal(micros('2026-01-02T03:04:05.000Z'), BASE);
    assert.equal(micros('2026-01-02T03:04:05.123Z'), BASE + 123_000);
    assert.equal(micros('2026-01-02T03:04:05.123456Z'), BASE + 123_456);
    assert.equal(micros('2026-01-02T03:04:05.1234569Z'), BASE + 123_456, 'truncates below a microsecond');
    assert.equal(micros('2026-01-02t03:04:05.5z'), BASE + 500_000);
  });

  it('applies UTC offsets', () => {
    assert.equal(micros('2026-01-02T03:04:05+00:00'), BASE);
    assert.equal(micros('2026-01-02T05:04:05+02:00'), BASE);
    assert.equal(micros('2026-01-01T21:34:05.25-05:30'), BASE + 250_000);
    assert.equal(micros('2026-01-02T05:04:05+0200'), BASE);
    assert.equal(micros('2026-01-02T05:04:05+02'), BASE);
  });

  it('reads an unencoded "+" offset that the query decoder turned into a space', () => {
    assert.equal(micros('2026-01-02T05:04:05 02:00'), BASE);
  });

  it('reads a timestamp without offset as UTC, and a bare date as midnight', () => {
    assert.equal(micros('2026-01-02T03:04:05'), BASE);
    assert.equal(micros('2026-01-02 03:04:05'), BASE);
    assert.equal(micros('2026-01-02'), Date.UTC(2026, 0, 2) * 1000);
  });

  it('covers the years epoch microseconds can hold exactly, and refuses the rest cleanly', () => {
    assert.equal(formatTaxiiTimestamp(micros('1700-03-01T00:00:00Z')), '1700-03-01T00:00:00.000000Z');
    assert.equal(formatTaxiiTimestamp(micros('2255-06-01T00:00:00Z')), '2255-06-01T00:00:00.000000Z');
    assert.equal(parseTaxiiTimestamp('0050-06-01T00:00:00Z').ok, false);
    assert.equal(parseTaxiiTimestamp('9999-12-31T23:59:59Z').ok, false);
  });

  it('rejects garbage and impossible dates', () => {
    for (const bad of [
      '',
      'yesterday',
      '1735689600',
      '2026-13-01T00:00:00Z',
      '2026-02-29T00:00:00Z',
      '2026-01-02T24:00:00Z',
      '2026-01-02T03:04:05+25:00',
      '2026-01-02T03:04:05.Z',
      '2026-01-02T03:04:05ZZ',
    ]) {
      const parsed = parseTaxiiTimestamp(bad);
      assert.equal(parsed.ok, false, `${JSON.stringify(bad)} should not parse`);
    }
    assert.equal(parseTaxiiTimestamp('2024-02-29T00:00:00Z').ok, true);
  });
});

describe('formatTaxiiTimestamp', () => {
  it('always writes six fractional digits', () => {
    assert.equal(formatTaxiiTimestamp(BASE), '2026-01-02T03:04:05.000000Z');
    assert.equal(formatTaxiiTimestamp(BASE + 123_456), '2026-01-02T03:04:05.123456Z');
    assert.equal(formatTaxiiTimestamp(BASE + 7), '2026-01-02T03:04:05.000007Z');
    assert.equal(formatTaxiiTimestamp(-1), '1969-12-31T23:59:59.999999Z');
  });

  it('round-trips with the parser', () => {
    for (const value of [
      0,
      BASE,
      BASE + 1,
      BASE + 999_999,
      -1,
      Number.MAX_SAFE_INTEGER,
      Number.MIN_SAFE_INTEGER,
    ]) {
      assert.equal(micros(formatTaxiiTimestamp(value)), value);
    }
    for (const text of ['2026-01-02T03:04:05.123456Z', '1999-12-31T23:59:59.999999Z']) {
      assert.equal(formatTaxiiTimestamp(micros(text)), text);
    }
  });

  it('refuses non-integers and out-of-range values', () => {
    assert.throws(() => formatTaxiiTimestamp(1.5), RangeError);
    assert.throws(() => formatTaxiiTimestamp(2 ** 53), RangeError);
  });
});

describe('parseAccept', () => {
  const ok = [
    undefined,
    '',
    '*/*',
    'application/*',
    'application/taxii+json',
    'application/taxii+json;version=2.1',
    'application/taxii+json; version=2.1',
    'APPLICATION/TAXII+JSON; Version="2.1"',
    'text/html, application/taxii+json;version=2.1;q=0.9',
    'application/json;q=1, */*;q=0.1',
    'application/taxii+json;version=2.0, application/taxii+json;version=2.1',
    ['text/html', 'application/taxii+json'],
  ];
  for (const header of ok) {
    it(`accepts ${JSON.stringify(header)}`, () => {
      assert.equal(parseAccept(header).ok, true);
    });
  }
  const notAcceptable = [
    'application/json',
    'text/html',
    'application/taxii+json;version=2.0',
    'application/stix+json;version=2.1',
    'application/vnd.oasis.taxii+json; version=2.0',
    'application/taxii+json;version=2.1;q=0',
    '*/*;q=0',
    'nonsense',
  ];
  for (const header of notAcceptable) {
    it(`refuses ${JSON.stringify(header)}`, () => {
      assert.equal(parseAccept(header).ok, false);
    });
  }
});

describe('parseTaxiiQuery', () => {
  it('defaults limit to 100 and version to last', () => {
    const parsed = query({});
    assert.equal(parsed.limit, 100);
    assert.equal(parsed.limitGiven, false);
    assert.deepEqual(parsed.match, { version: DEFAULT_VERSION_MATCH });
  });

  it('clamps limit above 1000 and rejects zero, negatives and non-numbers', () => {
    assert.equal(query({ limit: '5000' }).limit, 1000);
    assert.equal(query({ limit: '99999999999999999999999' }).limit, 1000);
    assert.equal(query({ limit: '1000' }).limit, 1000);
    assert.equal(query({ limit: ' 25 ' }).limit, 25);
    for (const bad of ['0', '-5', 'abc', '', '1.5', '1e3', '10abc']) {
      const parsed = parseTaxiiQuery({ limit: bad });
      assert.equal(parsed.ok, false, `limit=${bad}`);
      if (!parsed.ok) assert.equal(parsed.parameter, 'limit');
    }
  });

  it('reads match filters from raw and percent-encoded keys in any case', () => {
    assert.deepEqual(query({ 'match%5Btype%5D': 'indicator,identity' }).match.type, [
      'indicator',
      'identity',
    ]);
    assert.deepEqual(query({ 'match%5btype%5d': 'indicator' }).match.type, ['indicator']);
    assert.deepEqual(query({ 'match[type]': ['indicator', 'identity'] }).match.type, [
      'indicator',
      'identity',
    ]);
    assert.deepEqual(query({ 'match%5Bspec_version%5D': '2.1' }).match.specVersion, ['2.1']);
    const merged = query({ 'match[id]': 'indicator--a', 'match%5Bid%5D': ['indicator--b', 'indicator--a'] });
    assert.deepEqual(merged.match.id, ['indicator--a', 'indicator--b']);
  });

  it('accepts a nested match object from a qs-style parser', () => {
    assert.deepEqual(query({ match: { type: 'indicator', version: 'all' } }).match.type, ['indicator']);
    assert.equal(query({ match: { version: 'all' } }).match.version.all, true);
  });

  it('splits comma lists and drops blanks', () => {
    assert.deepEqual(query({ 'match[type]': ' indicator , ,identity,' }).match.type, [
      'indicator',
      'identity',
    ]);
  });

  it('parses match[version] keywords and timestamps', () => {
    assert.deepEqual(query({ 'match[version]': 'all' }).match.version, {
      all: true,
      first: false,
      last: false,
      at: [],
    });
    assert.deepEqual(query({ 'match[version]': 'first,last' }).match.version, {
      all: false,
      first: true,
      last: true,
      at: [],
    });
    assert.deepEqual(query({ 'match%5Bversion%5D': '2026-01-02T03:04:05.000Z' }).match.version.at, [BASE]);
    const bad = parseTaxiiQuery({ 'match[version]': 'newest' });
    assert.equal(bad.ok, false);
    if (!bad.ok) assert.equal(bad.parameter, 'match[version]');
  });

  it('parses added_after, including a percent-encoded value', () => {
    assert.equal(query({ added_after: '2026-01-02T03:04:05Z' }).addedAfter, BASE);
    assert.equal(query({ added_after: '2026-01-02T03%3A04%3A05Z' }).addedAfter, BASE);
    assert.equal(parseTaxiiQuery({ added_after: 'last tuesday' }).ok, false);
  });

  it('parses offset, and rejects a negative one', () => {
    assert.equal(query({ offset: '0' }).offset, 0);
    assert.equal(query({ offset: '200' }).offset, 200);
    assert.equal(parseTaxiiQuery({ offset: '-1' }).ok, false);
  });

  it('allows repeats of the same value but not conflicting single params', () => {
    assert.equal(query({ limit: ['10', '10'] }).limit, 10);
    assert.equal(parseTaxiiQuery({ limit: ['10', '20'] }).ok, false);
    assert.equal(
      parseTaxiiQuery({ added_after: '2026-01-02T03:04:05Z', 'added%5Fafter': '2026-01-02T03:04:05Z' }).ok,
      true,
    );
  });

  it('ignores unknown params such as key and rejects non-string values', () => {
    assert.equal(query({ key: 'sk_free_x', 'match[added_after]': 'x', foo: { a: 1 } }).limit, 100);
    assert.equal(parseTaxiiQuery({ limit: { $gt: 1 } }).ok, false);
  });
});

describe('cursor encoding', () => {
  const cursor: TaxiiCursor = {
    afterDateAdded: BASE + 42,
    afterSeq: 7,
    afterId: 'indicator--1b3c0d2e-4f5a-4b6c-8d7e-9f0a1b2c3d4e',
    addedAfter: BASE - 1,
    limit: 1000,
    match: {
      id: ['indicator--1b3c0d2e-4f5a-4b6c-8d7e-9f0a1b2c3d4e'],
      type: ['indicator'],
      version: { all: false, first: true, last: true, at: [BASE] },
      specVersion: ['2.1'],
    },
  };

  it('round-trips every field', () => {
    const token = encodeCursor(cursor);
    assert.match(token, /^[A-Za-z0-9_.-]+$/, 'needs no escaping in a URL');
    const decoded = decodeCursor(token);
    assert.ok(decoded.ok);
    assert.deepEqual(decoded.value, cursor);
  });

  it('round-trips a minimal cursor', () => {
    const minimal: TaxiiCursor = { afterDateAdded: 0, match: { version: DEFAULT_VERSION_MATCH } };
    const decoded = decodeCursor(encodeCursor(minimal));
    assert.ok(decoded.ok);
    assert.deepEqual(decoded.value, {
      afterDateAdded: 0,
      match: { version: { ...DEFAULT_VERSION_MATCH, at: [] } },
    });
  });

  it('rejects garbage, truncation and tampering cleanly', () => {
    const token = encodeCursor(cursor);
    const [version, payload = '', check] = token.split('.');
    const tampered = `${version}.${Buffer.from(
      Buffer.from(payload, 'base64url').toString('utf8').replace('"l":1000', '"l":999'),
    ).toString('base64url')}.${check}`;
    for (const bad of [
      '',
      'abc',
      'null',
      '1..',
      token.slice(0, -2),
      token.slice(3),
      `2${token.slice(1)}`,
      tampered,
      `${token}x`,
      'x'.repeat(20_000),
      '1.e30=.AAAA',
    ]) {
      const decoded = decodeCursor(bad);
      assert.equal(decoded.ok, false, `should reject ${bad.slice(0, 40)}`);
    }
  });
});

// An in-memory listing that pages the way the store will: date_added > position, ascending.
interface Row {
  readonly dateAdded: number;
  readonly id: string;
  readonly type: string;
}

function fetchPage(rows: readonly Row[], page: TaxiiPage): { objects: Row[]; more: boolean; next?: string } {
  const matching = rows.filter(
    (row) =>
      (page.afterDateAdded === undefined || row.dateAdded > page.afterDateAdded) &&
      (page.match.type === undefined || page.match.type.includes(row.type)),
  );
  const objects = matching.slice(0, page.limit);
  const more = matching.length > objects.length;
  const last = objects.at(-1);
  return {
    objects,
    more,
    ...(more && last ? { next: nextCursor(page, { dateAdded: last.dateAdded }) } : {}),
  };
}

function pageAll(
  rows: readonly Row[],
  first: Record<string, unknown>,
  follow: (next: string) => Record<string, unknown>,
) {
  const seen: string[] = [];
  let params = first;
  let pages = 0;
  for (;;) {
    const resolved = resolveTaxiiPage(query(params));
    assert.ok(resolved.ok);
    const result = fetchPage(rows, resolved.value);
    pages++;
    seen.push(...result.objects.map((row) => row.id));
    if (!result.more) {
      assert.equal(result.next, undefined, 'no next on the last page');
      break;
    }
    assert.ok(result.next);
    params = follow(result.next);
    assert.ok(pages < 100, 'paging must terminate');
  }
  return { seen, pages };
}

describe('paging with next (case 012)', () => {
  // 2,500 indicators, 500 of them in the same second (distinct microseconds), plus identities.
  const rows: Row[] = [];
  for (let index = 0; index < 2500; index++) {
    rows.push({
      dateAdded: BASE + Math.floor(index / 500) * 1_000_000 + index,
      id: `i${index}`,
      type: 'indicator',
    });
  }
  rows.push({ dateAdded: BASE + 10_000_000, id: 'identity', type: 'identity' });
  const indicatorIds = rows.filter((row) => row.type === 'indicator').map((row) => row.id);
  const firstRequest = { added_after: '2025-01-01T00:00:00Z', limit: '1000', 'match[type]': 'indicator' };

  it('(c) next and limit only: 3 pages, every indicator once', () => {
    const { seen, pages } = pageAll(rows, firstRequest, (next) => ({ next, limit: '1000' }));
    assert.equal(pages, 3);
    assert.deepEqual(seen, indicatorIds);
  });

  it('(a) next, limit and the original filters re-sent', () => {
    const { seen, pages } = pageAll(rows, firstRequest, (next) => ({ ...firstRequest, next }));
    assert.equal(pages, 3);
    assert.deepEqual(seen, indicatorIds);
  });

  it('(b) next and the original added_after, limit dropped: the cursor keeps the page size', () => {
    const { seen, pages } = pageAll(rows, firstRequest, (next) => ({
      next,
      added_after: firstRequest.added_after,
    }));
    assert.equal(pages, 3);
    assert.deepEqual(seen, indicatorIds);
  });

  it('the cursor filters win over changed ones, and the position over a changed added_after', () => {
    const { seen } = pageAll(rows, firstRequest, (next) => ({
      next,
      'match[type]': 'identity',
      added_after: '2000-01-01T00:00:00Z',
    }));
    assert.deepEqual(seen, indicatorIds);
  });

  it('a follow-up limit changes only the page size', () => {
    const { seen, pages } = pageAll(rows, firstRequest, (next) => ({ next, limit: '500' }));
    assert.equal(pages, 1 + 3);
    assert.deepEqual(seen, indicatorIds);
  });

  it('ignores offset once a cursor is present', () => {
    const token = nextCursor(
      { limit: 10, match: { version: DEFAULT_VERSION_MATCH }, fromCursor: false },
      { dateAdded: BASE },
    );
    const resolved = resolveTaxiiPage(query({ next: token, offset: '20' }));
    assert.ok(resolved.ok);
    assert.equal(resolved.value.offset, undefined);
    assert.equal(resolved.value.afterDateAdded, BASE);
    assert.equal(resolved.value.limit, 10);
    assert.equal(resolved.value.fromCursor, true);
  });

  it('reports a garbage next as a client error', () => {
    const resolved = resolveTaxiiPage(query({ next: 'garbage' }));
    assert.equal(resolved.ok, false);
  });
});

describe('taxiiError', () => {
  it('builds the TAXII error resource with a string http_status', () => {
    assert.deepEqual(
      taxiiError({
        httpStatus: 400,
        title: 'Bad request',
        description: 'limit must be at least 1',
        errorCode: 'invalid_parameter',
      }),
      {
        title: 'Bad request',
        description: 'limit must be at least 1',
        error_code: 'invalid_parameter',
        http_status: '400',
      },
    );
    assert.deepEqual(taxiiError({ httpStatus: 406, title: 'Not acceptable' }), {
      title: 'Not acceptable',
      http_status: '406',
    });
  });
});
