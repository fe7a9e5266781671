// Opens the configured database (SQLite file or PostgreSQL pool) and runs migrations; the only dialect-aware setup.
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import {
  CompiledQuery,
  type DatabaseConnection,
  Kysely,
  Migrator,
  PostgresDialect,
  SqliteDialect,
  SqliteDriver,
} from 'kysely';
import pg from 'pg';
import type { Database, Dialect } from './database.js';
import { migrations } from './migrations/index.js';

export interface OpenDatabase {
  readonly db: Kysely<Database>;
  readonly dialect: Dialect;
  /** The raw better-sqlite3 handle (SQLite only), for the few statements that must be synchronous. */
  readonly sqlite: BetterSqlite3.Database | null;
  close(): Promise<void>;
}

// Writers take the lock when the transaction starts, so two processes never deadlock upgrading a
// read lock to a write lock (SQLITE_BUSY that busy_timeout cannot resolve).
class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

/**
 * Kysely prepares every statement anew on each execution; on a hot path that costs as much as running
 * it. This view of the database keeps the most recent prepared statements by SQL text (Kysely holds the
 * single connection's mutex while it uses one, so a cached statement is never used twice at once).
 */
function withStatementCache(database: BetterSqlite3.Database, capacity = 500) {
  const cache = new Map<string, BetterSqlite3.Statement>();
  return {
    prepare(sqlText: string): BetterSqlite3.Statement {
      const hit = cache.get(sqlText);
      if (hit) {
        cache.delete(sqlText);
        cache.set(sqlText, hit);
        return hit;
      }
      const statement = database.prepare(sqlText);
      cache.set(sqlText, statement);
      if (cache.size > capacity) {
        const oldest = cache.keys().next().value;
        if (oldest !== undefined) cache.delete(oldest);
      }
      return statement;
    },
    close(): void {
      cache.clear();
      database.close();
    },
  };
}

class ImmediateSqliteDialect extends SqliteDialect {
  private readonly database: ReturnType<typeof withStatementCache>;
  constructor(raw: BetterSqlite3.Database) {
    const database = withStatementCache(raw);
    super({ database });
    this.database = database;
  }
  override createDriver() {
    return new ImmediateSqliteDriver({ database: this.database });
  }
}

function sqlitePath(url: string): string {
  const path = url.replace(/^sqlite:(\/\/)?/, '');
  return path === ':memory:' ? path : resolve(path);
}

function openSqlite(url: string): OpenDatabase {
  const path = sqlitePath(url);
  if (path !== ':memory:') {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    if (!existsSync(path)) closeSync(openSync(path, 'a', 0o600));
    chmodSync(path, 0o600);
  }
  const sqlite = new BetterSqlite3(path);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('busy_timeout = 10000');
  sqlite.pragma('foreign_keys = ON');
  // 64 MiB page cache for the one writer connection (default 2 MiB): evidence ingest inserts into
  // random-keyed B-trees (evidence_ids, the session indexes) and a 10,000-row bulk report touches several
  // indexes of a table of 10^6 rows; both outgrow 2 MiB and every cache miss is a read. Grows as used.
  sqlite.pragma('cache_size = -65536');
  const db = new Kysely<Database>({ dialect: new ImmediateSqliteDialect(sqlite) });
  return {
    db,
    dialect: 'sqlite',
    sqlite,
    close: async () => {
      await db.destroy();
    },
  };
}

let pgTypesConfigured = false;

function openPostgres(url: string, poolSize: number): OpenDatabase {
  if (!pgTypesConfigured) {
    // int8 and numeric come back as strings by default; every such column here fits a double.
    pg.types.setTypeParser(20, (value) => Number.parseInt(value, 10));
    pg.types.setTypeParser(1700, (value) => Number.parseFloat(value));
    pgTypesConfigured = true;
  }
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    connectionTimeoutMillis: 3000,
    idleTimeoutMillis: 30_000,
  });
  // A dropped idle connection must not crash the process; the next query gets a fresh one.
  pool.on('error', () => {});
  // Nor may a connection that dies while checked out (PostgreSQL restarting mid-transaction): pg emits
  // 'error' on the client, which nothing else listens to, and the query in flight already rejects.
  pool.on('connect', (client) => {
    client.on('error', () => {});
  });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    dialect: 'postgres',
    sqlite: null,
    close: async () => {
      await db.destroy();
    },
  };
}

/** Opens the database named by a VAKT_DATABASE_URL value. Does not migrate. */
export function openDatabase(url: string, poolSize = 10): OpenDatabase {
  return url.startsWith('sqlite:') ? openSqlite(url) : openPostgres(url, poolSize);
}

/** Brings the schema to the latest version; throws with the failing migration's error. */
export async function migrateToLatest(database: OpenDatabase): Promise<string[]> {
  const migrator = new Migrator({
    db: database.db,
    provider: { getMigrations: async () => migrations(database.dialect) },
  });
  // Kysely takes no migration lock on SQLite (it assumes one process). Several processes may start on
  // one file at once (`serve` twice, `--workers`), so the whole run happens inside one BEGIN IMMEDIATE
  // on the single connection Kysely also uses: the others wait, then find nothing left to do.
  const sqlite = database.sqlite;
  if (sqlite) sqlite.exec('BEGIN IMMEDIATE');
  let outcome: Awaited<ReturnType<Migrator['migrateToLatest']>>;
  try {
    outcome = await migrator.migrateToLatest();
  } catch (error) {
    if (sqlite?.inTransaction) sqlite.exec('ROLLBACK');
    throw error;
  }
  if (sqlite?.inTransaction) sqlite.exec(outcome.error ? 'ROLLBACK' : 'COMMIT');
  const { error, results } = outcome;
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
