// The Store: an open database plus the transaction helper every service uses.
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect, sql, type Transaction } from 'kysely';
import type { Database, Db, DbExecutor, Dialect } from './database.js';
import { migrateToLatest, type OpenDatabase, openDatabase } from './open-database.js';
import { startWalCheckpointer, type WalCheckpointer } from './wal-checkpointer.js';

export class Store {
  readonly db: Db;
  readonly dialect: Dialect;
  /**
   * The raw SQLite handle (null on PostgreSQL) for the few bulk statements where Kysely's per-call
   * compile costs more than the insert. Statements on it run on the one connection, so inside
   * `transaction()` they are part of the open transaction.
   */
  readonly sqlite: BetterSqlite3.Database | null;

  private constructor(private readonly opened: OpenDatabase) {
    this.db = opened.db;
    this.dialect = opened.dialect;
    this.sqlite = opened.sqlite;
  }

  /** Opens and migrates the database named by `url` (sqlite:<path> or postgres://…). */
  static async open(url: string, options: { poolSize?: number; migrate?: boolean } = {}): Promise<Store> {
    const opened = openDatabase(url, options.poolSize ?? 10);
    try {
      if (options.migrate !== false) await migrateToLatest(opened);
    } catch (error) {
      await opened.close();
      throw error;
    }
    return new Store(opened);
  }

  /**
   * Runs `work` in one transaction: all of its writes commit together or not at all. On SQLite the
   * transaction takes the write lock up front (BEGIN IMMEDIATE).
   */
  transaction<T>(work: (tx: Transaction<Database>) => Promise<T>): Promise<T> {
    return this.db.transaction().execute(work);
  }

  /**
   * `transaction(work)` whose commit does not run SQLite's automatic WAL checkpoint (decision 0852): a big
   * write (a bulk report dirties thousands of pages) commits into the WAL only, and the caller runs
   * `checkpoint()` later, off the request path. The commit is as durable as any other (WAL, `synchronous =
   * NORMAL`); any later commit on the connection checkpoints as usual if nobody called `checkpoint()`.
   * PostgreSQL: the same as `transaction`.
   */
  async transactionWithoutCheckpoint<T>(work: (tx: Transaction<Database>) => Promise<T>): Promise<T> {
    const sqlite = this.sqlite;
    if (!sqlite) return this.transaction(work);
    // Restored as it was: the default, or the background checkpointer's backstop (decision 0631).
    const before = Number(sqlite.pragma('wal_autocheckpoint', { simple: true }));
    try {
      return await this.transaction(async (tx) => {
        // Inside the transaction: the connection is ours until the commit.
        sqlite.pragma('wal_autocheckpoint = 0');
        return work(tx);
      });
    } finally {
      sqlite.pragma(`wal_autocheckpoint = ${before}`);
    }
  }

  /**
   * Copies the WAL back into the database file as far as readers allow (SQLite `wal_checkpoint(PASSIVE)`,
   * waiting for any open transaction on the connection first); nothing on PostgreSQL. Nothing either while
   * the background checkpointer runs: it does the same within its interval on its own thread, whereas here
   * copying the WAL of a bulk report (tens of MB) held this thread, and every request, for 0.1-0.4 s.
   */
  async checkpoint(): Promise<void> {
    if (this.dialect !== 'sqlite' || !this.sqlite || this.checkpointer !== null) return;
    await this.db.connection().execute(async (connection) => {
      await sql`pragma wal_checkpoint(PASSIVE)`.execute(connection);
    });
  }

  /**
   * A consistent read-only view for long reads (blacklist streaming): every query on `db` sees one
   * snapshot, and writers are not blocked. PostgreSQL: a REPEATABLE READ, READ ONLY transaction on one
   * pooled connection. SQLite: a second, read-only connection in a read transaction (WAL lets writers go
   * on); an in-memory database has no second connection, so it reads the live database instead.
   * `release()` must be called once; it never throws.
   */
  async readSnapshot(): Promise<ReadSnapshot> {
    if (this.dialect === 'postgres') {
      const trx = await this.db
        .startTransaction()
        .setIsolationLevel('repeatable read')
        .setAccessMode('read only')
        .execute();
      return {
        db: trx,
        sqlite: null,
        release: () =>
          trx
            .rollback()
            .execute()
            .catch(() => {}),
      };
    }
    const path = this.opened.sqlite?.name;
    if (!path || path === ':memory:' || this.opened.sqlite?.memory) {
      return { db: this.db, sqlite: null, release: async () => {} };
    }
    const raw = new BetterSqlite3(path, { readonly: true, fileMustExist: true });
    raw.pragma('busy_timeout = 10000');
    const reader = new Kysely<Database>({ dialect: new SqliteDialect({ database: raw }) });
    try {
      const trx = await reader.startTransaction().execute();
      return {
        db: trx,
        sqlite: raw,
        release: async () => {
          await trx
            .rollback()
            .execute()
            .catch(() => {});
          await reader.destroy().catch(() => {});
        },
      };
    } catch (error) {
      await reader.destroy().catch(() => {});
      throw error;
    }
  }

  private checkpointer: Promise<WalCheckpointer | null> | null = null;

  /**
   * SQLite database file: runs WAL checkpoints on a background thread from now until `stopWalCheckpointer`
   * or `close` (decision 0631), so that commits on the request path stay short. No-op otherwise.
   */
  startWalCheckpointer(): Promise<void> {
    const path = this.sqlite?.name;
    if (!this.sqlite || !path || path === ':memory:' || this.sqlite.memory) return Promise.resolve();
    this.checkpointer ??= startWalCheckpointer(this.sqlite, path);
    return this.checkpointer.then(() => {});
  }

  async stopWalCheckpointer(): Promise<void> {
    const running = this.checkpointer;
    this.checkpointer = null;
    await (await running)?.stop();
  }

  async close(): Promise<void> {
    await this.stopWalCheckpointer();
    await this.opened.close();
  }
}

/** See Store.readSnapshot. */
export interface ReadSnapshot {
  readonly db: DbExecutor;
  /**
   * The snapshot's own read-only SQLite connection, already inside the snapshot's read transaction, for
   * raw prepared statements on long reads (blacklist streaming); null on PostgreSQL and for an in-memory
   * database (whose one connection is shared with writers).
   */
  readonly sqlite: BetterSqlite3.Database | null;
  release(): Promise<void>;
}
