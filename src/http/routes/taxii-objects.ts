// GET …/objects/, …/objects/{id}/, …/objects/{id}/versions/ and …/manifest/ (SPEC §4; counter: taxii, one per indicator).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../../core/errors.js';
import { stixTimestamp } from '../../core/stix.js';
import {
  formatTaxiiTimestamp,
  nextCursor,
  parseTaxiiQuery,
  resolveTaxiiPage,
  STIX_MEDIA_TYPE,
  TAXII_DATE_ADDED_FIRST_HEADER,
  TAXII_DATE_ADDED_LAST_HEADER,
  type TaxiiPage,
} from '../../core/taxii.js';
import type { Services } from '../../services/services.js';
import type { TaxiiPageRow } from '../../store/taxii-repository.js';
import { requireKey } from '../plugins/auth.js';
import { charge } from '../plugins/quota.js';
import { registerReadOnly, sendTaxii } from '../plugins/taxii.js';
import { isFeedCollection } from './taxii-discovery.js';

type Kind = 'objects' | 'object' | 'versions' | 'manifest';

interface Params {
  collectionId: string;
  objectId?: string;
}

const ALL_VERSIONS = { all: true, first: false, last: false, at: [] } as const;

// Fastify has decoded the path once; clients that double-encode an IPv6 (`%253A`) still resolve.
function decodedOnce(text: string): string {
  if (!text.includes('%')) return text;
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** The page a request asks for: query + cursor combined, pinned to one object for the per-object routes. */
async function requestedPage(services: Services, request: FastifyRequest, kind: Kind): Promise<TaxiiPage> {
  const params = request.params as Params;
  const { collectionId } = await services.taxii.feed(services.clock.now());
  if (!isFeedCollection(params.collectionId, collectionId)) {
    throw new ApiError('not_found', 'No such collection.');
  }
  const query = parseTaxiiQuery((request.query ?? {}) as Record<string, unknown>);
  if (!query.ok)
    throw new ApiError('invalid_parameter', `Invalid ${query.parameter}: ${query.reason}.`, query.parameter);
  const resolved = resolveTaxiiPage(query.query);
  if (!resolved.ok) throw new ApiError('invalid_parameter', `Invalid next: ${resolved.reason}.`, 'next');
  let page = resolved.value;
  if (params.objectId !== undefined) {
    const stixId = await services.taxii.resolveObjectId(decodedOnce(params.objectId));
    if (!stixId) throw new ApiError('not_found', 'No such object in this collection.');
    page = { ...page, match: { ...page.match, id: [stixId] } };
  }
  // The versions resource lists every version; match[version] does not apply there (TAXII 2.1 §5.7).
  if (kind === 'versions') page = { ...page, match: { ...page.match, version: ALL_VERSIONS } };
  return page;
}

/**
 * Charges one unit per indicator (the Identity and the marking definition are free) and cuts the
 * page to what the key may still receive, so the counter drops by exactly what is returned.
 */
async function chargeIndicators(
  services: Services,
  request: FastifyRequest,
  reply: FastifyReply,
  rows: readonly TaxiiPageRow[],
): Promise<{ rows: readonly TaxiiPageRow[]; cut: boolean }> {
  const indicators = rows.reduce((n, r) => n + (r.object_type === 'indicator' ? 1 : 0), 0);
  const outcome = await charge(services, request, reply, 'taxii', indicators, { partial: true });
  if (outcome.granted >= indicators) return { rows, cut: false };
  let left = outcome.granted;
  let end = 0;
  for (; end < rows.length; end++) {
    const row = rows[end];
    if (row?.object_type === 'indicator') {
      if (left === 0) break;
      left--;
    }
  }
  return { rows: rows.slice(0, end), cut: true };
}

function envelope(
  reply: FastifyReply,
  page: TaxiiPage,
  rows: readonly TaxiiPageRow[],
  more: boolean,
  listName: 'objects' | 'versions',
  item: (row: TaxiiPageRow) => string,
): string {
  const first = rows[0];
  const last = rows[rows.length - 1];
  let body = `{"more":${more}`;
  if (more && last) body += `,"next":${JSON.stringify(nextCursor(page, { dateAdded: last.date_added_us }))}`;
  if (first && last) {
    reply.header(TAXII_DATE_ADDED_FIRST_HEADER, formatTaxiiTimestamp(first.date_added_us));
    reply.header(TAXII_DATE_ADDED_LAST_HEADER, formatTaxiiTimestamp(last.date_added_us));
    body += `,"${listName}":[${rows.map(item).join(',')}]`;
  }
  return `${body}}`;
}

function manifestRecord(row: TaxiiPageRow): string {
  return JSON.stringify({
    id: row.stix_id,
    date_added: formatTaxiiTimestamp(row.date_added_us),
    version: stixTimestamp(row.modified_ms),
    media_type: STIX_MEDIA_TYPE,
  });
}

export function registerTaxiiObjectRoutes(app: FastifyInstance, services: Services) {
  const options = { schema: { hide: true }, onRequest: requireKey(services, { allowBasic: true }) };
  const base = '/taxii2/collections/:collectionId';

  const handler = (kind: Kind) => async (request: FastifyRequest, reply: FastifyReply) => {
    const page = await requestedPage(services, request, kind);
    const result = await services.taxii.page(page);
    if (kind === 'objects' || kind === 'object') {
      const charged = await chargeIndicators(services, request, reply, result.rows);
      const more = result.more || charged.cut;
      return sendTaxii(
        reply,
        envelope(reply, page, charged.rows, more, 'objects', (r) => r.object),
      );
    }
    // Manifests and version lists name no address, so they cost nothing; the headers still show usage.
    await charge(services, request, reply, 'taxii', 0, { partial: true });
    if (kind === 'manifest') {
      return sendTaxii(reply, envelope(reply, page, result.rows, result.more, 'objects', manifestRecord));
    }
    return sendTaxii(
      reply,
      envelope(reply, page, result.rows, result.more, 'versions', (r) =>
        JSON.stringify(stixTimestamp(r.modified_ms)),
      ),
    );
  };

  const routes: [string, Kind][] = [
    [`${base}/objects/`, 'objects'],
    [`${base}/objects/:objectId/`, 'object'],
    [`${base}/objects/:objectId/versions/`, 'versions'],
    [`${base}/manifest/`, 'manifest'],
  ];
  for (const [url, kind] of routes) {
    app.get(url, options, handler(kind));
    registerReadOnly(app, url);
  }
}
