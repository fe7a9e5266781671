// API-key authentication (SPEC §2.1): Bearer header, or ?key= on GET; the resolved key hangs on the request.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../../core/errors.js';
import type { AuthenticatedKey } from '../../services/key-service.js';
import type { Services } from '../../services/services.js';

declare module 'fastify' {
  interface FastifyRequest {
    apiKey: AuthenticatedKey | null;
  }
}

/** The key text a request presents, or null. Basic auth (key as password) is accepted when `allowBasic`. */
export function presentedKey(request: FastifyRequest, allowBasic = false): string | null {
  const header = request.headers.authorization;
  // The common case first, without splitting: "Bearer <key>" with nothing else in it.
  if (typeof header === 'string' && header.startsWith('Bearer ') && header.length > 7) {
    const value = header.slice(7);
    if (value.indexOf(' ') === -1 && value.trim() === value) return value;
  }
  if (typeof header === 'string' && header.trim() !== '') {
    const [scheme, ...rest] = header.trim().split(/\s+/);
    const value = rest.join(' ');
    if (scheme?.toLowerCase() === 'bearer') return value;
    if (allowBasic && scheme?.toLowerCase() === 'basic') {
      const decoded = Buffer.from(value, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      return colon >= 0 ? decoded.slice(colon + 1) : decoded;
    }
    return '';
  }
  if (request.method === 'GET' || request.method === 'HEAD') {
    const query = request.query as Record<string, unknown> | undefined;
    const key = query?.key;
    if (typeof key === 'string') return key;
  }
  return null;
}

type Authentication = Awaited<ReturnType<Services['keys']['authenticate']>>;

/**
 * An onRequest hook factory that authenticates and, optionally, restricts tiers. Callback-style: a key
 * seen within the cache TTL is accepted synchronously, without a promise on the hot path.
 */
export function requireKey(services: Services, options: { sensorOnly?: boolean; allowBasic?: boolean } = {}) {
  const accept = (request: FastifyRequest, result: Authentication): ApiError | undefined => {
    if (!result.ok) return ApiError.from(result);
    const isSensor = result.key.tier.id === 'sensor';
    if (options.sensorOnly && !isSensor) {
      return new ApiError('forbidden', 'Only sensor keys may call this endpoint.');
    }
    if (!options.sensorOnly && isSensor) {
      return new ApiError('forbidden', 'Sensor keys may only call the sensor ingest endpoint.');
    }
    request.apiKey = result.key;
    return undefined;
  };
  return (request: FastifyRequest, _reply: FastifyReply, done: (error?: Error) => void): void => {
    const presented = presentedKey(request, options.allowBasic);
    const cached = services.keys.cachedAuthentication(presented);
    if (cached !== undefined) {
      done(accept(request, cached));
      return;
    }
    services.keys.authenticate(presented).then(
      (result) => done(accept(request, result)),
      (error: Error) => done(error),
    );
  };
}

/** The authenticated key of a request that passed requireKey. */
export function keyOf(request: FastifyRequest): AuthenticatedKey {
  if (!request.apiKey) throw new ApiError('internal_error', 'route is missing authentication');
  return request.apiKey;
}
