// GET /v1/catalog — the detection catalog, public (SPEC §3.5): behaviours and primitives with severities and MITRE ids.
import type { FastifyInstance } from 'fastify';
import { loadCatalog } from '../../core/detection/catalog.js';

export function registerCatalogRoute(app: FastifyInstance) {
  const catalog = loadCatalog();
  // Built once: the catalog is data shipped with the release and never changes while running.
  const body = {
    version: catalog.version,
    behaviors: catalog.behaviors.map((b) => ({
      name: b.name,
      severity: b.severity,
      description: b.description,
      mitre: [...b.mitre],
      killChainPhase: b.killChainPhase,
      condition: b.condition,
      acrossSessions: b.acrossSessions === true,
    })),
    primitives: catalog.primitives.map((p) => ({
      name: p.name,
      description: p.description,
      protocol: p.protocol,
      eventType: p.eventType,
      field: p.field,
      operator: p.operator,
      pattern: p.pattern,
      caseInsensitive: p.caseInsensitive === true,
    })),
  };
  app.get(
    '/v1/catalog',
    { schema: { summary: 'Detection catalog: behaviours and primitives', tags: ['v1'], security: [] } },
    async (_request, reply) => {
      reply.header('Cache-Control', 'public, max-age=300');
      return body;
    },
  );
}
