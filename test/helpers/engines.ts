// The engines every store/route/quota test runs on: one test list, two databases (SQLite, PostgreSQL) and Redis.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';

export type Engine = 'sqlite' | 'postgres';
export const ENGINES: readonly Engine[] = ['sqlite', 'postgres'];

export const POSTGRES_ADMIN_URL =
  process.env.VAKT_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const REDIS_TEST_URL = process.env.VAKT_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/15';

async function postgresReachable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

async function redisReachable(): Promise<boolean> {
  const client = new Redis(REDIS_TEST_URL, {
    lazyConnect: true,
    connectTimeout: 2000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

const [postgresUp, redisUp] = await Promise.all([postgresReachable(), redisReachable()]);

/** Where usage counters live in a test app: the store's usage table, or Redis (db 15, unique key prefix). */
export type QuotaBackend = 'store' | 'redis';

/** Why the Redis-backed suites are skipped, or undefined to run them (CI: a missing Redis fails). */
export function redisSkipReason(): string | undefined {
  if (redisUp) return undefined;
  if (process.env.CI) throw new Error(`Redis is required in CI but ${REDIS_TEST_URL} does not answer`);
  return `Redis is not reachable at ${REDIS_TEST_URL}; start it to run the Redis quota suite`;
}

/**
 * The combinations the store/route/quota suites run on: both databases with store counters, and
 * PostgreSQL with Redis counters (the cluster set-up).
 */
export interface Backend {
  readonly name: string;
  readonly engine: Engine;
  readonly quota: QuotaBackend;
}
export const BACKENDS: readonly Backend[] = [
  { name: 'sqlite', engine: 'sqlite', quota: 'store' },
  { name: 'postgres', engine: 'postgres', quota: 'store' },
  { name: 'postgres+redis', engine: 'postgres', quota: 'redis' },
];

export function backendSkipReason(backend: Backend): string | undefined {
  return skipReason(backend.engine) ?? (backend.quota === 'redis' ? redisSkipReason() : undefined);
}

/**
 * Why an engine's suite is skipped, or undefined to run it. In CI every engine is required: a missing
 * one fails loudly instead of skipping.
 */
export function skipReason(engine: Engine): string | undefined {
  if (engine === 'postgres' && !postgresUp) {
    if (process.env.CI)
      throw new Error(`PostgreSQL is required in CI but ${POSTGRES_ADMIN_URL} does not answer`);
    return `PostgreSQL is not reachable at ${POSTGRES_ADMIN_URL}; start it to run the PostgreSQL suite`;
  }
  return undefined;
}

export interface TestDatabase {
  readonly url: string;
  drop(): Promise<void>;
}

/** A fresh, empty database for one test file: a temp SQLite file, or a uniquely named PostgreSQL database. */
export async function createTestDatabase(engine: Engine): Promise<TestDatabase> {
  if (engine === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'vakt-test-'));
    return {
      url: `sqlite:${join(dir, 'vakt.db')}`,
      drop: async () => rmSync(dir, { recursive: true, force: true }),
    };
  }
  const name = `vakt_test_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
      await client.connect();
      try {
        await client.query(`drop database if exists ${name} with (force)`);
      } finally {
        await client.end();
      }
    },
  };
}
