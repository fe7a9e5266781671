// `vakt serve [--workers N]` — one process, or a primary that forks N workers on one port (SPEC §12, §13).
import cluster, { type Worker } from 'node:cluster';
import { parseArgs } from 'node:util';
import type { FastifyInstance } from 'fastify';
import { type Config, loadConfig } from '../config/config.js';
import { buildApp, defaultLoggerOptions } from '../http/build-app.js';
import type { JobLog } from '../services/jobs.js';
import { printLine, UsageError } from './output.js';
import { openRuntime, type Runtime } from './runtime.js';
import { keepNextTickShape } from './tick-shape.js';

export interface RunningServer {
  readonly app: FastifyInstance;
  readonly runtime: Runtime;
  readonly address: string;
  close(): Promise<void>;
}

export interface ServerOptions {
  /** Run background jobs in this process (single-process mode). Workers leave them to the primary. */
  readonly jobs: boolean;
  /** Create and print the first operator key on an empty database. */
  readonly firstKey: boolean;
}

/** At the first start of a server on a database, creates one unlimited operator key and returns its secret. */
async function ensureOperatorKey(runtime: Runtime): Promise<string | null> {
  const created = await runtime.services.keys.createFirstOperatorKey();
  return created ? created.key : null;
}

function printFirstKey(config: Config, key: string) {
  printLine('');
  printLine('Vakt created its first operator key (unlimited). It is shown only this once:');
  printLine(`  ${key}`);
  printLine('Try it:');
  printLine(`  curl -H "Authorization: Bearer ${key}" ${config.publicUrl}/v1/key/check/45.83.12.7`);
  printLine('');
}

/** JSON lines on stdout for the cluster primary, which has no Fastify logger. */
function primaryLog(config: Config): JobLog {
  const write = (level: string, fields: Record<string, unknown>, msg: string) => {
    if (config.logLevel === 'silent') return;
    const err = fields.err instanceof Error ? { err: { message: fields.err.message } } : {};
    process.stdout.write(
      `${JSON.stringify({ level, time: Date.now(), pid: process.pid, role: 'primary', ...fields, ...err, msg })}\n`,
    );
  };
  return {
    info: (fields, msg) => write('info', fields, msg),
    error: (fields, msg) => write('error', fields, msg),
  };
}

async function preparePartitions(runtime: Runtime, log: JobLog) {
  try {
    const created = await runtime.services.retention.preparePartitions(runtime.services.clock.now());
    if (created.length > 0) log.info({ partitions: created.length }, 'created daily partitions');
  } catch (error) {
    // Rows still land in the default partition; the daily job retries.
    log.error({ err: error }, 'could not create daily partitions');
  }
}

export async function startServer(
  config: Config,
  options: ServerOptions = { jobs: true, firstKey: true },
): Promise<RunningServer> {
  // A no-op when bin/vakt.js already did it; else as early as a programmatic start allows (decision 0009).
  keepNextTickShape();
  const runtime = await openRuntime(config);
  let app: FastifyInstance | null = null;
  try {
    const firstKey = options.firstKey ? await ensureOperatorKey(runtime) : null;
    app = await buildApp(runtime.services, { logger: defaultLoggerOptions(config.logLevel) });
    const address = await app.listen({ host: config.host, port: config.port });
    // Load geo/ASN after listening: requests are served meanwhile, with null geolocation until it is done.
    void runtime.services.geo.load();
    if (firstKey) printFirstKey(config, firstKey);
    if (options.jobs) {
      // What the jobs did (retention's counts above all) goes to the server's log.
      runtime.jobs.useLog(app.log);
      await preparePartitions(runtime, app.log);
      runtime.jobs.start();
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

function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    const done = () => resolve();
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
    // A worker whose primary is gone stops too, instead of serving unsupervised.
    if (cluster.isWorker) process.once('disconnect', done);
  });
}

/**
 * The cluster primary: migrates, creates the first key, runs background jobs (the one place they run
 * on this host), forks `count` workers that share the listening port, re-forks any that die, and on
 * SIGTERM/SIGINT stops them all before exiting.
 */
async function runPrimary(config: Config, count: number): Promise<number> {
  const log = primaryLog(config);
  const runtime = await openRuntime(config, { jobLog: log, withoutQuota: true });
  try {
    const firstKey = await ensureOperatorKey(runtime);
    if (firstKey) printFirstKey(config, firstKey);
    await preparePartitions(runtime, log);
    runtime.jobs.start();

    let stopping = false;
    const recentCrashes: number[] = [];
    const fork = () => {
      const worker = cluster.fork();
      worker.on('exit', (code, signal) => {
        if (stopping) return;
        const now = Date.now();
        recentCrashes.push(now);
        while (recentCrashes.length > 0 && (recentCrashes[0] ?? now) < now - 60_000) recentCrashes.shift();
        // Back off when workers keep dying (bad config, database gone) instead of spinning.
        const delay = Math.min(30_000, 200 * 2 ** Math.min(recentCrashes.length, 8));
        log.error(
          { worker: worker.process.pid, code, signal, restartInMs: delay },
          'worker exited; restarting',
        );
        setTimeout(() => {
          if (!stopping) fork();
        }, delay).unref();
      });
      return worker;
    };
    for (let i = 0; i < count; i++) fork();
    log.info({ workers: count, port: config.port }, 'cluster started');

    await untilSignal();
    stopping = true;
    const alive = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
    await Promise.all(
      alive.map(
        (worker) =>
          new Promise<void>((resolve) => {
            if (worker.isDead()) return resolve();
            const force = setTimeout(() => worker.process.kill('SIGKILL'), 10_000);
            worker.once('exit', () => {
              clearTimeout(force);
              resolve();
            });
            worker.process.kill('SIGTERM');
          }),
      ),
    );
    return 0;
  } finally {
    await runtime.close();
  }
}

export async function serveCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { workers: { type: 'string' } } });
  let workers = 1;
  if (values.workers !== undefined) {
    if (!/^[0-9]+$/.test(values.workers) || Number(values.workers) < 1 || Number(values.workers) > 256) {
      throw new UsageError('--workers: expected a whole number from 1 to 256');
    }
    workers = Number(values.workers);
  }
  const config = loadConfig();
  if (cluster.isPrimary && workers > 1) return runPrimary(config, workers);
  const inCluster = cluster.isWorker;
  const server = await startServer(config, { jobs: !inCluster, firstKey: !inCluster });
  await untilSignal();
  await server.close().catch(() => {});
  // A worker's IPC channel would keep it alive after the server closed.
  if (inCluster) process.disconnect?.();
  return 0;
}
