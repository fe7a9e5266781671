// Builds the Fastify application (no listen): plugins, content types, error mapping and every route.
import { createServer } from 'node:http';
import formbody from '@fastify/formbody';
import multipart from '@fastify/multipart';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { cidrContains, parseIp } from '../core/ip.js';
import { redactKeyParameter } from '../core/redact.js';
import type { Services } from '../services/services.js';
import { MAX_BODY_BYTES } from './body-limits.js';
import { createCheckFastLane, type FastLane, requestIdFor } from './check-fast-lane.js';
import { type ErrorRenderer, registerErrorHandling, renderJsonError } from './plugins/errors.js';
import { registerTaxiiHooks, renderTaxiiError, TAXII_PREFIX } from './plugins/taxii.js';
import { registerHealthRoute } from './routes/healthz.js';
import { registerTaxiiDiscoveryRoutes } from './routes/taxii-discovery.js';
import { registerTaxiiObjectRoutes } from './routes/taxii-objects.js';
import { registerCatalogRoute } from './routes/v1-catalog.js';
import { registerBlacklistRoute } from './routes/v1-key-blacklist.js';
import { registerBulkCheckRoute } from './routes/v1-key-bulk-check.js';
import { registerBulkReportRoute } from './routes/v1-key-bulk-report.js';
import { registerCheckRoute } from './routes/v1-key-check.js';
import { registerReportRoute } from './routes/v1-key-report.js';
import { registerStatusRoute } from './routes/v1-key-status.js';
import { registerUsernameEmailRoutes } from './routes/v1-key-username-email.js';
import { registerSensorEventsRoute } from './routes/v1-sensor-events.js';

export interface AppOptions {
  /** Pino options or false; tests pass false. */
  logger?: FastifyServerOptions['logger'];
}

export { MAX_BODY_BYTES };

export function defaultLoggerOptions(level: string): FastifyServerOptions['logger'] {
  return {
    level,
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', 'req.headers.key'],
      censor: '[redacted]',
    },
    serializers: {
      req(request: { method: string; url: string; ip?: string; id?: string }) {
        return {
          method: request.method,
          url: redactKeyParameter(request.url),
          ip: request.ip,
          id: request.id,
        };
      },
    },
  };
}

type Bindings = Parameters<FastifyBaseLogger['child']>[0];
type ChildOptions = Parameters<FastifyBaseLogger['child']>[1];
type LogArgs = [unknown, ...unknown[]];

/**
 * Fastify makes a child logger (bound to the request id) for every request. Pino's child() costs a few
 * microseconds, which is measurable on the check path; this stand-in makes the child only when a line is
 * actually written at an enabled level, so with the access log off (level warn) no request pays for it.
 */
class LazyChildLogger {
  private real: FastifyBaseLogger | null = null;

  constructor(
    private readonly parent: FastifyBaseLogger & { isLevelEnabled?: (level: string) => boolean },
    private readonly bindings: Bindings,
    private readonly options: ChildOptions,
  ) {}

  get level(): string {
    return this.real?.level ?? this.parent.level;
  }

  private write(level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace', args: LogArgs): void {
    if (this.parent.isLevelEnabled && !this.parent.isLevelEnabled(level)) return;
    if (this.real === null) this.real = this.parent.child(this.bindings, this.options);
    (this.real[level] as (...a: unknown[]) => void)(...args);
  }

  child(bindings: Bindings, options?: ChildOptions): FastifyBaseLogger {
    if (this.real === null) this.real = this.parent.child(this.bindings, this.options);
    return this.real.child(bindings, options);
  }
  fatal(...args: LogArgs) {
    this.write('fatal', args);
  }
  error(...args: LogArgs) {
    this.write('error', args);
  }
  warn(...args: LogArgs) {
    this.write('warn', args);
  }
  info(...args: LogArgs) {
    this.write('info', args);
  }
  debug(...args: LogArgs) {
    this.write('debug', args);
  }
  trace(...args: LogArgs) {
    this.write('trace', args);
  }
  silent() {}
}

const lazyChildLogger: NonNullable<FastifyServerOptions['childLoggerFactory']> = (
  parent,
  bindings,
  options,
) => new LazyChildLogger(parent, bindings, options) as unknown as FastifyBaseLogger;

declare module 'fastify' {
  interface FastifyInstance {
    /** The check fast lane in front of the router (decision 0007). */
    checkFastLane: FastLane;
  }
}

/** Fastify's own default, kept now that the app creates its server (serverFactory). */
const KEEP_ALIVE_TIMEOUT_MS = 72_000;

export async function buildApp(services: Services, options: AppOptions = {}): Promise<FastifyInstance> {
  const { config } = services;
  // Off while the access log is on: its lines come from Fastify's request logging.
  let accessLog = true;
  const fastLane = createCheckFastLane(services, () => !accessLog);
  const trusted = config.trustedProxies;
  const app = Fastify({
    logger: options.logger ?? false,
    childLoggerFactory: lazyChildLogger,
    bodyLimit: MAX_BODY_BYTES,
    // Client-IP headers count only when the peer is a configured proxy (SPEC §2, ARCHITECTURE 15).
    trustProxy:
      trusted.length === 0
        ? false
        : (address: string) => {
            const parsed = parseIp(address);
            return parsed.ok && trusted.some((cidr) => cidrContains(cidr, parsed.ip.key));
          },
    genReqId: (request) => requestIdFor(request.headers['x-request-id']),
    // The check fast lane sits in front of Fastify's router (decision 0007); the rest is Fastify's.
    serverFactory: (handler) => {
      const server = createServer((request, response) => {
        if (!fastLane(request, response)) handler(request, response);
      });
      server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
      return server;
    },
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 500 },
    ajv: { customOptions: { coerceTypes: 'array', removeAdditional: false, allErrors: false } },
  });
  const log = app.log as FastifyBaseLogger & { isLevelEnabled?: (level: string) => boolean };
  accessLog = options.logger ? (log.isLevelEnabled?.('info') ?? true) : false;
  app.decorate('checkFastLane', fastLane);
  // The evidence aggregator runs beside the app (decision 0630): sensor ingest only stores and marks.
  // SQLite: WAL checkpoints on a background thread, out of the ingest answers' commits (decision 0631).
  app.addHook('onReady', async () => {
    services.evidence.start({
      onError: (error) => app.log.error({ err: error }, 'evidence aggregation failed'),
    });
    await services.store.startWalCheckpointer();
  });
  // Bulk reports' TAXII versions are published right after their commit (decision 0852).
  app.addHook('onReady', (done) => {
    // Accepted bulk reports are applied right after their answer (decision 0853).
    services.bulkQueue.start({
      onError: (error) => app.log.error({ err: error }, 'applying bulk reports failed'),
    });
    services.taxiiOutbox.start({
      onError: (error) => app.log.error({ err: error }, 'TAXII publishing failed'),
    });
    done();
  });
  app.addHook('onClose', async () => {
    await services.evidence.stop();
    await services.bulkQueue.stop();
    await services.taxiiOutbox.stop();
    await services.store.stopWalCheckpointer();
  });
  app.decorateRequest('apiKey', null);
  // Callback-style (not async) hooks: they run on every request, and each promise costs on the hot path.
  app.addHook('onSend', (request, reply, payload, done) => {
    reply.header('X-Request-Id', request.id);
    done(null, payload);
  });

  // Error bodies by URL prefix: JSON (SPEC §2.2) by default; TAXII routes add their own renderer.
  const errorRenderers: { prefix: string; render: ErrorRenderer }[] = [
    { prefix: TAXII_PREFIX, render: renderTaxiiError },
  ];
  registerErrorHandling(
    app,
    (request) => errorRenderers.find((r) => request.url.startsWith(r.prefix))?.render ?? renderJsonError,
  );

  await app.register(formbody, { bodyLimit: MAX_BODY_BYTES });
  // Raw CSV bodies (bulk-report) arrive as bytes: the CSV reader checks the encoding and strips a BOM.
  app.addContentTypeParser(['text/csv', 'application/csv'], { parseAs: 'buffer' }, (_request, body, done) => {
    done(null, body);
  });
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Vakt API',
        version: '1',
        description:
          'The /v1 REST API. The TAXII 2.1 server under /taxii2/ follows the OASIS TAXII 2.1 specification and ' +
          'is not described here; GET /healthz is the liveness probe.',
      },
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      },
      security: [{ bearer: [] }],
    },
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  registerHealthRoute(app, services);
  registerCheckRoute(app, services);
  registerReportRoute(app, services);
  registerStatusRoute(app, services);
  registerUsernameEmailRoutes(app, services);
  registerCatalogRoute(app);
  registerSensorEventsRoute(app, services);
  // Multipart only where it is used: the plugin adds an async onResponse hook to every request in its scope.
  await app.register(async (scope) => {
    await scope.register(multipart, { limits: { fileSize: MAX_BODY_BYTES } });
    registerBulkReportRoute(scope, services);
  });
  registerBulkCheckRoute(app, services);
  registerBlacklistRoute(app, services);
  registerTaxiiHooks(app);
  registerTaxiiDiscoveryRoutes(app, services);
  registerTaxiiObjectRoutes(app, services);
  // Collection id, Identity and TLP:CLEAR exist before the first TAXII request or score change.
  await services.taxii.initialise(services.clock.now());
  return app;
}
