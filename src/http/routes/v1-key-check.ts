// GET /v1/key/check/{ip} — reputation of one IP (SPEC §3.1; counter: lookups).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../../core/errors.js';
import { type IpAddress, parseIp } from '../../core/ip.js';
import type { CheckOptions } from '../../services/reputation-service.js';
import type { Services } from '../../services/services.js';
import { requireKey } from '../plugins/auth.js';
import { charge, chargeOneReserved } from '../plugins/quota.js';

const JSON_TYPE = 'application/json; charset=utf-8';

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
    (request, reply) => {
      const parsed = parse(request.params.ip);
      if (!parsed.ok) {
        throw new ApiError('invalid_ip', `Invalid IP address: ${parsed.reason}.`, 'ip');
      }
      const now = services.clock.now();
      const query = request.query;
      const options = {
        verbose: query.verbose !== false,
        maxAgeDays: query.maxAge ?? null,
        protocols: csv(query.protocols),
        ignoreWhitelist: query.ignoreWhitelist === true,
      };
      const whole = query.protocols === undefined && query.exclude === undefined;
      if (whole) {
        // Fully cached (answer and quota units in this process): answered without a promise.
        const json = services.reputation.cachedJson(parsed.ip, options, now);
        if (json !== undefined && chargeOneReserved(services, request, reply, 'lookups', now)) {
          reply.type(JSON_TYPE).send(json);
          return undefined;
        }
      }
      return answer(request, reply, parsed.ip, options, whole, now);
    },
  );

  async function answer(
    request: FastifyRequest<{ Querystring: CheckQuery }>,
    reply: FastifyReply,
    ip: IpAddress,
    options: CheckOptions,
    whole: boolean,
    now: number,
  ) {
    await charge(services, request, reply, 'lookups', 1, { now });
    const query = request.query;
    if (whole) {
      // The whole answer unchanged: send the cached JSON text (same bytes as serialising the object).
      reply.type(JSON_TYPE);
      return services.reputation.checkJson(ip, options, now);
    }
    const result = await services.reputation.check(ip, options, now);
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
  }
}
