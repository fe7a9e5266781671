// GET /v1/key/username/{u} and /v1/key/email/{e} — what sensors saw of a username or SMTP recipient (SPEC §3.5; counter: lookups).
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../../core/errors.js';
import { emailSummary, usernameSummary } from '../../services/evidence-read.js';
import type { Services } from '../../services/services.js';
import { requireKey } from '../plugins/auth.js';
import { charge } from '../plugins/quota.js';

const paramsSchema = (name: string) => ({
  type: 'object',
  properties: { [name]: { type: 'string', minLength: 1, maxLength: 256 } },
  required: [name],
});

export function registerUsernameEmailRoutes(app: FastifyInstance, services: Services) {
  app.get<{ Params: { username: string } }>(
    '/v1/key/username/:username',
    {
      onRequest: requireKey(services),
      schema: {
        summary: 'Sessions in which sensors saw a username tried',
        tags: ['v1'],
        params: paramsSchema('username'),
      },
    },
    async (request, reply) => {
      // A 404 is not charged (SPEC §2.3: 4xx answers are free), so look first, then charge.
      const found = await usernameSummary(services.store.db, request.params.username);
      if (!found) throw new ApiError('not_found', 'No sensor has seen this username.');
      await charge(services, request, reply, 'lookups', 1);
      return found;
    },
  );
  app.get<{ Params: { email: string } }>(
    '/v1/key/email/:email',
    {
      onRequest: requireKey(services),
      schema: {
        summary: 'Messages sensors saw addressed to an e-mail address',
        tags: ['v1'],
        params: paramsSchema('email'),
      },
    },
    async (request, reply) => {
      const found = await emailSummary(services.store.db, request.params.email);
      if (!found) throw new ApiError('not_found', 'No sensor has seen this e-mail address as a recipient.');
      await charge(services, request, reply, 'lookups', 1);
      return found;
    },
  );
}
