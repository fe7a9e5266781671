// POST /v1/key/report — one contributor report (SPEC §3.3; counter: reports).
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../../core/errors.js';
import type { RawReportFields } from '../../services/report-input.js';
import { validateReport } from '../../services/report-input.js';
import type { Services } from '../../services/services.js';
import { keyOf, requireKey } from '../plugins/auth.js';
import { quotaExceeded, setQuotaHeaders } from '../plugins/quota.js';

const scalar = { anyOf: [{ type: 'string' }, { type: 'number' }] };

export function registerReportRoute(app: FastifyInstance, services: Services) {
  app.post<{ Body: RawReportFields }>(
    '/v1/key/report',
    {
      onRequest: requireKey(services),
      bodyLimit: 64 * 1024,
      schema: {
        summary: 'Report one abusive IP address',
        tags: ['v1'],
        body: {
          type: 'object',
          properties: {
            ip: { type: 'string', maxLength: 100 },
            category: scalar,
            categories: { anyOf: [{ type: 'string' }, { type: 'array', items: scalar, maxItems: 16 }] },
            protocol: { type: 'string' },
            comment: { type: 'string' },
            timestamp: scalar,
          },
        },
      },
    },
    async (request, reply) => {
      const now = services.clock.now();
      const body = (request.body ?? {}) as RawReportFields;
      const valid = validateReport(body, now, services.config.allowlist);
      if (!valid.ok) throw ApiError.from(valid);
      const outcome = await services.reports.report(keyOf(request), valid.report, now);
      setQuotaHeaders(reply, 'reports', outcome.quota, now);
      if (outcome.status === 'quota_exceeded') throw quotaExceeded('reports', now);
      return {
        success: true,
        ip: outcome.ip,
        confidenceLevel: outcome.confidenceLevel,
        ...(outcome.status === 'duplicate' ? { duplicate: true } : {}),
      };
    },
  );
}
