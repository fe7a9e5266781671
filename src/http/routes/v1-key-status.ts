// GET /v1/key/status — the key's tier, today's quota use and alert counts (SPEC §3.5; not charged).
import type { FastifyInstance } from 'fastify';
import { ALERT_KINDS, COUNTERS } from '../../core/tiers.js';
import type { Services } from '../../services/services.js';
import { keyOf, requireKey } from '../plugins/auth.js';

export function registerStatusRoute(app: FastifyInstance, services: Services) {
  app.get(
    '/v1/key/status',
    {
      onRequest: requireKey(services),
      schema: { summary: 'Tier, quotas and alert counts of this key', tags: ['v1'] },
    },
    async (request) => {
      const key = keyOf(request);
      const used = await services.quota.usage(key.id, services.clock.now());
      const quotas = Object.fromEntries(
        COUNTERS.map((counter) => {
          const limit = key.limits[counter];
          return [
            counter,
            {
              used: used[counter],
              limit,
              remaining: limit === null ? null : Math.max(0, limit - used[counter]),
            },
          ];
        }),
      );
      const alerts = Object.fromEntries(
        ALERT_KINDS.map((kind) => [kind, { current: 0, limit: key.tier.alerts[kind] }]),
      );
      return { tier: { id: key.tier.id, name: key.tier.name }, quotas, alerts };
    },
  );
}
