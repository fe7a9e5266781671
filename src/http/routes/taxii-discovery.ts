// GET /taxii2/ (discovery and the single API root), collections, one collection, and status (SPEC §4).
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../../core/errors.js';
import { STIX_MEDIA_TYPE, TAXII_VERSIONS } from '../../core/taxii.js';
import type { Services } from '../../services/services.js';
import { TAXII_COLLECTION_ALIAS } from '../../services/taxii-service.js';
import { requireKey } from '../plugins/auth.js';
import { registerReadOnly, sendTaxii } from '../plugins/taxii.js';

/** Largest request body this API root accepts (it takes none: every collection is read-only). */
export const TAXII_MAX_CONTENT_LENGTH = 2 * 1024 * 1024;

/** True when `idOrAlias` names the feed's collection: its UUID (any case) or the alias. */
export function isFeedCollection(idOrAlias: string, collectionId: string): boolean {
  const wanted = idOrAlias.trim().toLowerCase();
  return wanted === collectionId.toLowerCase() || wanted === TAXII_COLLECTION_ALIAS;
}

export function collectionResource(collectionId: string) {
  return {
    id: collectionId,
    title: 'Vakt threat intelligence',
    description: 'STIX 2.1 indicators for IP addresses this instance scores as malicious.',
    alias: TAXII_COLLECTION_ALIAS,
    can_read: true,
    can_write: false,
    media_types: [STIX_MEDIA_TYPE],
  };
}

export function registerTaxiiDiscoveryRoutes(app: FastifyInstance, services: Services) {
  const apiRoot = `${services.config.publicUrl}/taxii2/`;
  const discovery = JSON.stringify({
    title: 'Vakt TAXII 2.1',
    description: 'IP reputation indicators from this Vakt instance. This document is also the API root.',
    default: apiRoot,
    api_roots: [apiRoot],
    versions: TAXII_VERSIONS,
    max_content_length: TAXII_MAX_CONTENT_LENGTH,
  });
  const hidden = { schema: { hide: true } };

  app.get('/taxii2/', hidden, async (_request, reply) => sendTaxii(reply, discovery));
  registerReadOnly(app, '/taxii2/');

  app.get('/taxii2/collections/', hidden, async (_request, reply) => {
    const { collectionId } = await services.taxii.feed(services.clock.now());
    return sendTaxii(reply, JSON.stringify({ collections: [collectionResource(collectionId)] }));
  });
  registerReadOnly(app, '/taxii2/collections/');

  app.get<{ Params: { collectionId: string } }>(
    '/taxii2/collections/:collectionId/',
    hidden,
    async (request, reply) => {
      const { collectionId } = await services.taxii.feed(services.clock.now());
      if (!isFeedCollection(request.params.collectionId, collectionId)) {
        throw new ApiError('not_found', 'No such collection.');
      }
      return sendTaxii(reply, JSON.stringify(collectionResource(collectionId)));
    },
  );
  registerReadOnly(app, '/taxii2/collections/:collectionId/');

  // Nothing can be written, so no status resource ever exists.
  app.get(
    '/taxii2/status/:statusId/',
    { ...hidden, onRequest: requireKey(services, { allowBasic: true }) },
    async () => {
      throw new ApiError('not_found', 'No such status resource: this server accepts no writes.');
    },
  );
  registerReadOnly(app, '/taxii2/status/:statusId/');
}
