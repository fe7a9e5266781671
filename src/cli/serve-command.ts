// `vakt serve` — opens the store, creates the first operator key on an empty database, and listens (SPEC §12).
import type { FastifyInstance } from 'fastify';
import { type Config, loadConfig } from '../config/config.js';
import { buildApp, defaultLoggerOptions } from '../http/build-app.js';
import { printLine } from './output.js';
import { openRuntime, type Runtime } from './runtime.js';

export interface RunningServer {
  readonly app: FastifyInstance;
  readonly runtime: Runtime;
  readonly address: string;
  close(): Promise<void>;
}

/** On a database with no keys, creates one unlimited operator key and returns its secret. */
async function ensureOperatorKey(runtime: Runtime): Promise<string | null> {
  const keys = runtime.services.keys;
  if (!(await keys.isEmpty())) return null;
  const created = await keys.create({ tier: 'unlimited', name: 'operator (created at first start)' });
  return created.key;
}

export async function startServer(config: Config): Promise<RunningServer> {
  const runtime = await openRuntime(config);
  let app: FastifyInstance | null = null;
  try {
    const firstKey = await ensureOperatorKey(runtime);
    app = await buildApp(runtime.services, { logger: defaultLoggerOptions(config.logLevel) });
    const address = await app.listen({ host: config.host, port: config.port });
    // Load geo/ASN after listening: requests are served meanwhile, with null geolocation until it is done.
    void runtime.services.geo.load();
    if (firstKey) {
      printLine('');
      printLine('Vakt created its database and one operator key (unlimited). It is shown only this once:');
      printLine(`  ${firstKey}`);
      printLine('Try it:');
      printLine(`  curl -H "Authorization: Bearer ${firstKey}" ${config.publicUrl}/v1/key/check/45.83.12.7`);
      printLine('');
    }
    const server = app;
    return {
      app: server,
      runtime,
      address,
      close: async () => {
        await server.close();
        await runtime.close();
      },
    };
  } catch (error) {
    await app?.close();
    await runtime.close();
    throw error;
  }
}

export async function serveCommand(_args: string[]): Promise<number> {
  const config = loadConfig();
  const server = await startServer(config);
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = () => {
      if (stopping) return;
      stopping = true;
      server.close().then(resolve, resolve);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}
