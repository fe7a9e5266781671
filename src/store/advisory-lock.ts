// Cluster-wide mutual exclusion for background jobs (SPEC §13): a PostgreSQL session advisory lock.
import { sql } from 'kysely';
import type { Db } from './database.js';

/**
 * Runs `work` only if no other session in the cluster holds the lock named `name`; returns
 * `{ acquired: false }` at once otherwise. The lock lives on one pooled connection held for the whole
 * run (so the pool needs at least 2 connections: `work` queries through others) and is released when
 * `work` settles, or by PostgreSQL if the connection dies.
 */
export async function withPostgresAdvisoryLock<T>(
  db: Db,
  name: string,
  work: () => Promise<T>,
): Promise<{ acquired: true; result: T } | { acquired: false }> {
  return db.connection().execute(async (connection) => {
    const got = await sql<{
      locked: boolean;
    }>`select pg_try_advisory_lock(hashtextextended(${name}, 7462)) as locked`.execute(connection);
    if (got.rows[0]?.locked !== true) return { acquired: false as const };
    try {
      return { acquired: true as const, result: await work() };
    } finally {
      await sql`select pg_advisory_unlock(hashtextextended(${name}, 7462))`
        .execute(connection)
        .catch(() => {});
    }
  });
}
