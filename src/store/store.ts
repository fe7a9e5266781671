// The Store: an open database plus the transaction helper every service uses.
import type { Transaction } from 'kysely';
import type { Database, Db, Dialect } from './database.js';
import { migrateToLatest, type OpenDatabase, openDatabase } from './open-database.js';

export class Store {
  readonly db: Db;
  readonly dialect: Dialect;

  private constructor(private readonly opened: OpenDatabase) {
    this.db = opened.db;
    this.dialect = opened.dialect;
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
