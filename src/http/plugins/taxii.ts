// TAXII wire rules for every /taxii2 response (SPEC §4): the media type, Accept negotiation, and the TAXII error resource.
import type { FastifyInstance, FastifyReply } from 'fastify';
import { ApiError } from '../../core/errors.js';
import { parseAccept, TAXII_MEDIA_TYPE, TAXII_WWW_AUTHENTICATE, taxiiError } from '../../core/taxii.js';
import type { ErrorRenderer } from './errors.js';

export const TAXII_PREFIX = '/taxii2';

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

function isTaxiiUrl(url: string): boolean {
  if (!url.startsWith(TAXII_PREFIX)) return false;
  const next = url.charCodeAt(TAXII_PREFIX.length);
  return Number.isNaN(next) || next === 47 /* / */ || next === 63 /* ? */;
}

/** Every error under /taxii2 as a TAXII 2.1 error resource; 401s carry WWW-Authenticate (SPEC §4). */
export const renderTaxiiError: ErrorRenderer = (request, reply, error) => {
  for (const [name, value] of Object.entries(error.headers)) reply.header(name, value);
  if (error.status === 401) reply.header('WWW-Authenticate', TAXII_WWW_AUTHENTICATE);
  const body = taxiiError({
    httpStatus: error.status,
    title: TITLES[error.status] ?? 'Error',
    description: error.message,
    errorCode: error.code,
    errorId: request.id,
    ...(error.parameter !== undefined ? { details: { parameter: error.parameter } } : {}),
  });
  return reply.status(error.status).type(TAXII_MEDIA_TYPE).send(JSON.stringify(body));
};

/** Sends a pre-serialised TAXII body with the one media type TAXII 2.1 allows. */
export function sendTaxii(reply: FastifyReply, body: string): FastifyReply {
  return reply.type(TAXII_MEDIA_TYPE).send(body);
}

/**
 * Root-level hooks for /taxii2: Accept is checked before anything else (406 only for explicit other
 * types or versions), and the media type is forced on every response, including Fastify's own 404s.
 * Callback-style hooks with a prefix test first: they run on every request of the whole API.
 */
export function registerTaxiiHooks(app: FastifyInstance): void {
  app.addHook('onRequest', (request, _reply, done) => {
    if (!isTaxiiUrl(request.url)) return done();
    const accept = parseAccept(request.headers.accept);
    if (!accept.ok) return done(new ApiError('not_acceptable', `Not acceptable: ${accept.reason}.`));
    done();
  });
  app.addHook('onSend', (request, reply, payload, done) => {
    if (isTaxiiUrl(request.url)) reply.header('Content-Type', TAXII_MEDIA_TYPE);
    done(null, payload);
  });
}

/** Answers every method but GET/HEAD on `url` with 405 and an Allow header (collections are read-only). */
export function registerReadOnly(app: FastifyInstance, url: string): void {
  app.route({
    method: ['POST', 'PUT', 'PATCH', 'DELETE'],
    url,
    // Like the TAXII GET routes: the TAXII 2.1 specification describes them, not /openapi.json.
    schema: { hide: true },
    handler: async () => {
      throw new ApiError('method_not_allowed', 'This TAXII resource is read-only.', undefined, {
        Allow: 'GET, HEAD',
      });
    },
  });
}

export { isTaxiiUrl };
