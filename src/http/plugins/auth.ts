// API-key authentication (SPEC §2.1): Bearer header, or ?key= on GET; the resolved key hangs on the request.
import type { FastifyRequest } from 'fastify';
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

/** An onRequest hook factory that authenticates and, optionally, restricts tiers. */
export function requireKey(services: Services, options: { sensorOnly?: boolean; allowBasic?: boolean } = {}) {
  return async (request: FastifyRequest) => {
    const result = await services.keys.authenticate(presentedKey(request, options.allowBasic));
    if (!result.ok) throw ApiError.from(result);
    const isSensor = result.key.tier.id === 'sensor';
    if (options.sensorOnly && !isSensor) {
      throw new ApiError('forbidden', 'Only sensor keys may call this endpoint.');
    }
    if (!options.sensorOnly && isSensor) {
      throw new ApiError('forbidden', 'Sensor keys may only call the sensor ingest endpoint.');
    }
    request.apiKey = result.key;
  };
}

/** The authenticated key of a request that passed requireKey. */
export function keyOf(request: FastifyRequest): AuthenticatedKey {
  if (!request.apiKey) throw new ApiError('internal_error', 'route is missing authentication');
  return request.apiKey;
}
