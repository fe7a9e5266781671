// GET /v1/key/check/{ip} — reputation of one IP (SPEC §3.1; counter: lookups).
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../../core/errors.js';
import { parseIp } from '../../core/ip.js';
import type { Services } from '../../services/services.js';
import { requireKey } from '../plugins/auth.js';
import { charge } from '../plugins/quota.js';

interface CheckQuery {
  verbose?: boolean;
  maxAge?: number;
  protocols?: string;
  exclude?: string;
  ignoreWhitelist?: boolean;
  key?: string;
}

const csv = (value: string | undefined) =>
  value === undefined
    ? null
    : value
        .split(',')
        .map((s) => s.trim().toLowerCase())
        .filter(Boolean);

/** Recently parsed path parameters: the same addresses are checked over and over (parsing allocates a key). */
const PARSED_CAPACITY = 10_000;

export function registerCheckRoute(app: FastifyInstance, services: Services) {
  const parsedIps = new Map<string, ReturnType<typeof parseIp>>();
  const parse = (text: string) => {
    let parsed = parsedIps.get(text);
    if (parsed === undefined) {
      parsed = parseIp(text);
      if (parsedIps.size >= PARSED_CAPACITY) parsedIps.clear();
      parsedIps.set(text, parsed);
    }
    return parsed;
  };
  app.get<{ Params: { ip: string }; Querystring: CheckQuery }>(
    '/v1/key/check/:ip',
    {
      onRequest: requireKey(services),
      schema: {
        summary: 'Reputation of one IP address',
        tags: ['v1'],
        params: { type: 'object', properties: { ip: { type: 'string', maxLength: 100 } }, required: ['ip'] },
        querystring: {
          type: 'object',
          properties: {
            verbose: { type: 'boolean', default: true },
            maxAge: { type: 'integer', minimum: 1, maximum: 365 },
            protocols: { type: 'string', maxLength: 1000 },
            exclude: { type: 'string', maxLength: 1000 },
            ignoreWhitelist: { type: 'boolean', default: false },
            key: { type: 'string' },
          },
        },
      },
    },
    async (request, reply) => {
      const parsed = parse(request.params.ip);
      if (!parsed.ok) {
        throw new ApiError('invalid_ip', `Invalid IP address: ${parsed.reason}.`, 'ip');
      }
      const now = services.clock.now();
      await charge(services, request, reply, 'lookups', 1, { now });
      const query = request.query;
      const options = {
        verbose: query.verbose !== false,
        maxAgeDays: query.maxAge ?? null,
        protocols: csv(query.protocols),
        ignoreWhitelist: query.ignoreWhitelist === true,
      };
      if (query.protocols === undefined && query.exclude === undefined) {
        // The whole answer unchanged: send the cached JSON text (same bytes as serialising the object).
        reply.type('application/json; charset=utf-8');
        return services.reputation.checkJson(parsed.ip, options, now);
      }
      const result = await services.reputation.check(parsed.ip, options, now);
      const protocolFilter = csv(query.protocols);
      if (protocolFilter)
        result.protocols = result.protocols.filter((p) => protocolFilter.includes(p.protocol));
      const exclude = new Set(csv(query.exclude)?.map((s) => s.toLowerCase()));
      if (exclude.size === 0) return result;
      const out: Record<string, unknown> = {};
      for (const [field, value] of Object.entries(result)) {
        if (!exclude.has(field.toLowerCase())) out[field] = value;
      }
      return out;
    },
  );
}
