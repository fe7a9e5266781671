// POST /v1/key/bulk-check-inline — many IPs, one per line (SPEC §3.5; counter: lookups, one per IP).
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../../core/errors.js';
import { type IpAddress, parseIp } from '../../core/ip.js';
import type { Services } from '../../services/services.js';
import { lookupMany } from '../../store/bulk-lookup-repository.js';
import { anyFeedRanges } from '../../store/feed-repository.js';
import { requireKey } from '../plugins/auth.js';
import { charge } from '../plugins/quota.js';

export const BULK_CHECK_MAX_IPS = 10_000;
/** The check of an address without a reputation row: only its score, country and last sighting are used. */
const FEED_ONLY_CHECK = {
  verbose: false,
  maxAgeDays: null,
  protocols: null,
  ignoreWhitelist: false,
} as const;

export function registerBulkCheckRoute(app: FastifyInstance, services: Services) {
  app.post(
    '/v1/key/bulk-check-inline',
    {
      onRequest: requireKey(services),
      bodyLimit: 1024 * 1024,
      schema: { summary: 'Reputation of up to 10,000 IP addresses, one per line', tags: ['v1'] },
    },
    async (request, reply) => {
      const body = request.body;
      const text = Buffer.isBuffer(body) ? body.toString('utf8') : typeof body === 'string' ? body : null;
      if (text === null) {
        throw new ApiError('unsupported_media_type', 'Send text/plain with one IP address per line.');
      }
      const lines = text
        .replace(/^\uFEFF/, '')
        .split(/\r?\n/)
        .map((line) => line.trim())
        .filter((line) => line !== '' && !line.startsWith('#'));
      if (lines.length === 0) throw new ApiError('invalid_parameter', 'The body holds no IP addresses.');
      if (lines.length > BULK_CHECK_MAX_IPS) {
        throw new ApiError('too_many_rows', `At most ${BULK_CHECK_MAX_IPS} IP addresses per request.`);
      }
      // Validate everything first: a request with a bad line is the caller's error and is not charged.
      const ips: string[] = [];
      const parsedIps = new Map<string, IpAddress>();
      for (const [index, line] of lines.entries()) {
        const parsed = parseIp(line);
        if (!parsed.ok) {
          throw new ApiError('invalid_ip', `Line ${index + 1}: invalid IP address: ${parsed.reason}.`, 'ip');
        }
        ips.push(parsed.ip.text);
        parsedIps.set(parsed.ip.text, parsed.ip);
      }
      const now = services.clock.now();
      await charge(services, request, reply, 'lookups', ips.length, { now });
      // Bulk rows this process acknowledged are part of the answer (decision 0853).
      await services.bulkQueue.settle();
      const rows = await lookupMany(services.store.db, [...parsedIps.keys()]);
      type Answer = {
        found: boolean;
        confidenceLevel: number;
        countryCode: string | null;
        lastSeen: number | null;
      };
      const answers = new Map<string, Answer>();
      for (const [ip, row] of rows) {
        answers.set(ip, {
          found: true,
          confidenceLevel: row.score,
          countryCode: row.country_code,
          lastSeen: row.last_seen,
        });
      }
      // An address without a row can still be inside a feed's CIDR listing: the check answers it, scored
      // from the listings as on GET /v1/key/check (decision 0702).
      if (answers.size < parsedIps.size && (await anyFeedRanges(services.store.db))) {
        for (const [text, ip] of parsedIps) {
          if (answers.has(text)) continue;
          const checked = await services.reputation.check(ip, FEED_ONLY_CHECK, now);
          if (!checked.found) continue;
          answers.set(text, {
            found: true,
            confidenceLevel: checked.confidenceLevel,
            countryCode: checked.geolocation?.countryCode ?? null,
            lastSeen: checked.lastSeen === null ? null : Date.parse(checked.lastSeen),
          });
        }
      }
      let found = 0;
      const results = ips.map((ip) => {
        const answer = answers.get(ip);
        if (answer) found++;
        return { ip, ...(answer ?? { found: false, confidenceLevel: 0, countryCode: null, lastSeen: null }) };
      });
      return { queried: ips.length, found, results };
    },
  );
}
