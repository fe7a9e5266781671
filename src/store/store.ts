// The Store: an open database plus the transaction helper every service uses.
import type BetterSqlite3 from 'better-sqlite3';
import type { Transaction } from 'kysely';
import type { Database, Db, Dialect } from './database.js';
import { migrateToLatest, type OpenDatabase, openDatabase } from './open-database.js';

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

  async close(): Promise<void> {
    await this.opened.close();
  }
}
