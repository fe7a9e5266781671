// GET /v1/key/blacklist — the generated blocklist in six formats, streamed (SPEC §3.2; counter: blacklist, one per IP).
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import {
  BLACKLIST_CONTENT_TYPES,
  type BlacklistFormat,
  formatBlacklist,
} from '../../core/blacklist-format.js';
import { ApiError } from '../../core/errors.js';
import type { BlacklistParams } from '../../services/blacklist-service.js';
import type { Services } from '../../services/services.js';
import { keyOf, requireKey } from '../plugins/auth.js';
import { quotaExceeded, setQuotaHeaders } from '../plugins/quota.js';

interface BlacklistQuery {
  scoreMinimum?: number;
  limit?: number;
  plaintext?: boolean;
  format?: BlacklistFormat;
  onlyCountries?: string;
  exceptCountries?: string;
  onlyAsn?: string;
  exceptAsn?: string;
  ipVersion?: '4' | '6' | 'mixed';
  protocols?: string;
  minSeverity?: string;
  ignoreWhitelist?: boolean;
  aggregate?: boolean;
  key?: string;
}

const SEVERITIES: Readonly<Record<string, number>> = {
  none: 0,
  low: 1,
  medium: 2,
  high: 3,
  very_high: 4,
  '0': 0,
  '1': 1,
  '2': 2,
  '3': 3,
  '4': 4,
};

function list(
  value: string | undefined,
  parameter: string,
  pattern: RegExp,
  normalise: (s: string) => string,
) {
  if (value === undefined) return null;
  const items = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(normalise);
  if (items.length === 0) return null;
  for (const item of items) {
    if (!pattern.test(item)) {
      throw new ApiError(
        'invalid_parameter',
        `Invalid ${parameter} value "${item.slice(0, 40)}".`,
        parameter,
      );
    }
  }
  return [...new Set(items)].sort();
}

/** Parses the query into service parameters; every problem is a 400 before anything is charged. */
export function blacklistParams(query: BlacklistQuery): BlacklistParams {
  const format: BlacklistFormat = query.format ?? (query.plaintext ? 'plaintext' : 'json');
  let minSeverity: number | null = null;
  if (query.minSeverity !== undefined && query.minSeverity !== '') {
    const value = SEVERITIES[query.minSeverity.trim().toLowerCase()];
    if (value === undefined) {
      throw new ApiError(
        'invalid_parameter',
        'minSeverity must be one of low, medium, high, very_high (or 0-4).',
        'minSeverity',
      );
    }
    minSeverity = value;
  }
  const asn = (s: string) => s.replace(/^as/i, '');
  return {
    format,
    aggregate: query.aggregate === true,
    requestedLimit: query.limit ?? null,
    scoreMinimum: query.scoreMinimum ?? 50,
    ignoreWhitelist: query.ignoreWhitelist === true,
    ipVersion: query.ipVersion === '4' ? 4 : query.ipVersion === '6' ? 6 : null,
    onlyCountries: list(query.onlyCountries, 'onlyCountries', /^[A-Z]{2}$/, (s) => s.toUpperCase()),
    exceptCountries: list(query.exceptCountries, 'exceptCountries', /^[A-Z]{2}$/, (s) => s.toUpperCase()),
    onlyAsn: list(query.onlyAsn, 'onlyAsn', /^[0-9]{1,10}$/, asn),
    exceptAsn: list(query.exceptAsn, 'exceptAsn', /^[0-9]{1,10}$/, asn),
    protocols: list(query.protocols, 'protocols', /^[a-z0-9][a-z0-9_.+-]{0,31}$/, (s) => s.toLowerCase()),
    minSeverity,
  };
}

function etagMatches(header: string | string[] | undefined, etag: string): boolean {
  if (header === undefined) return false;
  const text = Array.isArray(header) ? header.join(',') : header;
  if (text.trim() === '*') return true;
  // Strong comparison for our strong tags; a W/ prefix added by a proxy is tolerated (RFC 9110 §13.1.2).
  return text.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag);
}

export function registerBlacklistRoute(app: FastifyInstance, services: Services) {
  app.get<{ Querystring: BlacklistQuery }>(
    '/v1/key/blacklist',
    {
      onRequest: requireKey(services),
      schema: {
        summary: 'Generated blocklist',
        tags: ['v1'],
        querystring: {
          type: 'object',
          properties: {
            scoreMinimum: { type: 'integer', minimum: 1, maximum: 100 },
            limit: { type: 'integer', minimum: 1 },
            plaintext: { type: 'boolean' },
            format: { type: 'string', enum: ['json', 'plaintext', 'csv', 'ipset', 'nftables', 'nginx'] },
            onlyCountries: { type: 'string', maxLength: 2000 },
            exceptCountries: { type: 'string', maxLength: 2000 },
            onlyAsn: { type: 'string', maxLength: 2000 },
            exceptAsn: { type: 'string', maxLength: 2000 },
            ipVersion: { type: 'string', enum: ['4', '6', 'mixed'] },
            protocols: { type: 'string', maxLength: 1000 },
            minSeverity: { type: 'string', maxLength: 20 },
            ignoreWhitelist: { type: 'boolean' },
            aggregate: { type: 'boolean' },
            key: { type: 'string' },
          },
        },
      },
    },
    async (request, reply) => {
      const params = blacklistParams(request.query);
      const key = keyOf(request);
      const now = services.clock.now();
      const session = await services.blacklist.open(params, key.limits.blacklist, {
        // Without If-None-Match the list will be sent (or refused for quota): read it ahead if that helps.
        readAhead: request.headers['if-none-match'] === undefined,
      });
      let streaming = false;
      try {
        reply.header('X-Generated-At', String(now));
        const full = await session.etagFor(session.count);
        // What is left today decides the length; a client already holding that list gets a free 304.
        const usage = await services.quota.usage(key.id, now);
        const cap = key.limits.blacklist;
        const remaining = cap === null ? Number.POSITIVE_INFINITY : Math.max(0, cap - usage.blacklist);
        const expected = Math.min(session.count, remaining);
        const ifNoneMatch = request.headers['if-none-match'];
        for (const etag of expected === session.count ? [full] : [full, await session.etagFor(expected)]) {
          if (etagMatches(ifNoneMatch, etag)) {
            reply.header('ETag', etag);
            return reply.code(304).send();
          }
        }

        const outcome = await services.quota.consume({
          keyId: key.id,
          counter: 'blacklist',
          units: session.count,
          limit: cap,
          now,
          partial: true,
        });
        setQuotaHeaders(reply, 'blacklist', outcome, now);
        if (session.count > 0 && outcome.granted === 0) throw quotaExceeded('blacklist', now);
        const count = outcome.granted;
        const truncated = count < session.count || session.cutByTierCap;
        reply.header('ETag', await session.etagFor(count));
        if (truncated) reply.header('X-Blacklist-Truncated', 'true');
        reply.header('Cache-Control', 'private, no-cache');
        reply.type(BLACKLIST_CONTENT_TYPES[params.format]);
        const meta = {
          generatedAt: now,
          scoreMinimum: params.scoreMinimum,
          limit: session.limit ?? count,
          count,
          truncated,
        };
        const body = formatBlacklist(params.format, session.entries(count), { meta });
        const stream = Readable.from(body, { objectMode: false });
        // A client that leaves before the first chunk never starts the generator: release here too.
        stream.on('close', () => {
          void session.release();
        });
        streaming = true;
        return reply.send(stream);
      } finally {
        if (!streaming) await session.release();
      }
    },
  );
}
