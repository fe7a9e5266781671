// The check fast lane (decision 0007): a repeated GET /v1/key/check/{ip} whose answer, key and quota
// units are all held in this process is answered straight from node:http, before Fastify's routing.
// Anything else — or anything unusual about the request — falls through to the Fastify route.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type IpParseResult, parseIp } from '../core/ip.js';
import type { CheckOptions } from '../services/reputation-service.js';
import type { Services } from '../services/services.js';
import { pushQuotaHeaders } from './plugins/quota.js';

const PREFIX = '/v1/key/check/';
const JSON_TYPE = 'application/json; charset=utf-8';
/** The route's `ip` parameter limit (schema maxLength); longer ones go to Fastify for its 400. */
const MAX_IP_PARAM = 100;
const PARSED_CAPACITY = 10_000;

export const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** The request id rule shared with Fastify's genReqId: a sane incoming X-Request-Id, else a new UUID. */
export function requestIdFor(incoming: string | string[] | undefined): string {
  return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
}

/** The four variants answered here, made once (the answer cache only reads them). */
const VARIANTS: readonly CheckOptions[] = [false, true].flatMap((verbose) =>
  [false, true].map((ignoreWhitelist) =>
    Object.freeze({ verbose, maxAgeDays: null, protocols: null, ignoreWhitelist }),
  ),
);
const variant = (verbose: boolean, ignoreWhitelist: boolean): CheckOptions =>
  VARIANTS[(verbose ? 2 : 0) + (ignoreWhitelist ? 1 : 0)] as CheckOptions;
const DEFAULT_OPTIONS = variant(true, false);

/** The only query strings answered here; every other (maxAge, protocols, exclude, key …) goes to the route. */
function optionsForQuery(query: string): CheckOptions | null {
  let verbose = true;
  let ignoreWhitelist = false;
  if (query !== '') {
    for (const part of query.split('&')) {
      const eq = part.indexOf('=');
      const name = eq < 0 ? part : part.slice(0, eq);
      const value = eq < 0 ? '' : part.slice(eq + 1);
      if (value !== 'true' && value !== 'false') return null;
      if (name === 'verbose') verbose = value === 'true';
      else if (name === 'ignoreWhitelist') ignoreWhitelist = value === 'true';
      else return null;
    }
  }
  return variant(verbose, ignoreWhitelist);
}

/** Answers the request and returns true, or returns false without touching it. */
export type FastLane = ((request: IncomingMessage, response: ServerResponse) => boolean) & {
  /** Requests answered here so far (tests, diagnostics). */
  readonly served: () => number;
};

/**
 * `enabled()` is asked per request: false while the access log is on (its lines come from Fastify).
 * What is answered here is exactly what the route would answer — same status, headers and bytes — and
 * is charged the same single `lookups` unit; a test compares the two side by side.
 */
export function createCheckFastLane(services: Services, enabled: () => boolean): FastLane {
  const parsed = new Map<string, IpParseResult>();
  let served = 0;
  const lane = (request: IncomingMessage, response: ServerResponse): boolean => {
    const url = request.url;
    if (url === undefined || request.method !== 'GET' || !url.startsWith(PREFIX) || !enabled()) return false;
    const header = request.headers.authorization;
    if (header === undefined || !header.startsWith('Bearer ')) return false;
    const auth = services.keys.cachedAuthentication(header.slice(7));
    if (auth === undefined || !auth.ok || auth.key.tier.id === 'sensor') return false;

    const queryAt = url.indexOf('?', PREFIX.length);
    const param = queryAt < 0 ? url.slice(PREFIX.length) : url.slice(PREFIX.length, queryAt);
    // Percent-encoding, extra path segments, trailing slashes: the router's business.
    if (param === '' || param.length > MAX_IP_PARAM || param.includes('/') || param.includes('%'))
      return false;
    const options = queryAt < 0 ? DEFAULT_OPTIONS : optionsForQuery(url.slice(queryAt + 1));
    if (options === null) return false;
    let ip = parsed.get(param);
    if (ip === undefined) {
      ip = parseIp(param);
      if (parsed.size >= PARSED_CAPACITY) parsed.clear();
      parsed.set(param, ip);
    }
    if (!ip.ok) return false;

    const now = services.clock.now();
    const answer = services.reputation.cachedAnswer(ip.ip, options, now);
    if (answer === undefined) return false;
    const outcome = services.quota.consumeReserved?.({
      keyId: auth.key.id,
      counter: 'lookups',
      units: 1,
      limit: auth.key.limits.lookups,
      now,
      partial: false,
    });
    if (outcome === undefined) return false;

    // A flat [name, value, …] list: node:http takes it as is, with no per-request object to shape.
    const headers: (string | number)[] = [];
    pushQuotaHeaders(headers, 'lookups', outcome, now);
    headers.push(
      'content-type',
      JSON_TYPE,
      'x-request-id',
      requestIdFor(request.headers['x-request-id']),
      'content-length',
      answer.bytes,
    );
    response.writeHead(200, headers);
    response.end(answer.json);
    served += 1;
    return true;
  };
  return Object.assign(lane, { served: () => served });
}
