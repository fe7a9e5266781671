// POST /v1/sensor/events — sensor event batches (SPEC §7): per-event validation, de-duplication on (sensor, id).
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../../core/errors.js';
import { type SensorEvent, validateEvent } from '../../core/events.js';
import { DAY_MS } from '../../core/time.js';
import type { Services } from '../../services/services.js';
import { requireKey } from '../plugins/auth.js';

/** Most events one request may carry (SPEC §7 batches). */
export const MAX_SENSOR_BATCH = 5_000;
/** 5,000 events with 8 KiB command or body prefixes would not fit; real batches are far smaller. */
const SENSOR_BODY_LIMIT = 16 * 1024 * 1024;

export interface SensorBatchResponse {
  received: number;
  accepted: number;
  duplicates: number;
  rejected: number;
  errors: { index: number; reason: string }[];
}

export function registerSensorEventsRoute(app: FastifyInstance, services: Services) {
  app.post<{ Body: unknown }>(
    '/v1/sensor/events',
    {
      onRequest: requireKey(services, { sensorOnly: true }),
      bodyLimit: SENSOR_BODY_LIMIT,
      schema: {
        summary: 'Ingest a batch of sensor events (sensor keys only)',
        tags: ['sensor'],
        body: {
          oneOf: [
            { type: 'array' },
            { type: 'object', properties: { events: { type: 'array' } }, required: ['events'] },
          ],
        },
      },
    },
    async (request): Promise<SensorBatchResponse> => {
      const body = request.body;
      const list: unknown[] = Array.isArray(body) ? body : ((body as { events: unknown[] }).events ?? []);
      if (list.length > MAX_SENSOR_BATCH) {
        throw new ApiError(
          'payload_too_large',
          `A batch holds at most ${MAX_SENSOR_BATCH} events; this one has ${list.length}.`,
          'events',
        );
      }
      const now = services.clock.now();
      const retentionMs = services.config.retentionDays * DAY_MS;
      const valid: SensorEvent[] = [];
      const errors: { index: number; reason: string }[] = [];
      list.forEach((input, index) => {
        const result = validateEvent(input, now, retentionMs);
        if (result.ok) valid.push(result.event);
        else errors.push({ index, reason: result.reason });
      });
      const outcome = await services.evidence.ingest(valid, now);
      return {
        received: list.length,
        accepted: outcome.accepted,
        duplicates: outcome.duplicates,
        rejected: errors.length,
        errors,
      };
    },
  );
}
