// GET /healthz — liveness plus a database round trip; 503 when the store does not answer.
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { ApiError } from '../../core/errors.js';
import type { Services } from '../../services/services.js';

export function registerHealthRoute(app: FastifyInstance, services: Services) {
  app.get('/healthz', { schema: { hide: true } }, async () => {
    try {
      await sql`select 1`.execute(services.store.db);
    } catch {
      throw new ApiError('service_unavailable', 'The database does not answer.');
    }
    return { status: 'ok' };
  });
}
