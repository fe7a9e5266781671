// Prepared statements on the raw better-sqlite3 handle for bulk writers (ingest, feed import): built once
// per connection and SQL text, run once per row inside the caller's transaction (same connection).
import type BetterSqlite3 from 'better-sqlite3';

const cachedStatements = new WeakMap<BetterSqlite3.Database, Map<string, BetterSqlite3.Statement>>();

/** A prepared statement on the raw SQLite handle, cached per connection and SQL text. */
export function sqliteStatement(sqlite: BetterSqlite3.Database, text: string): BetterSqlite3.Statement {
  let cache = cachedStatements.get(sqlite);
  if (!cache) {
    cache = new Map();
    cachedStatements.set(sqlite, cache);
  }
  let statement = cache.get(text);
  if (!statement) {
    statement = sqlite.prepare(text);
    cache.set(text, statement);
  }
  return statement;
}

/**
 * SQLite fast path for the ingest's upserts: one prepared single-row statement run per row (no query
 * building or compiling per chunk). `set` is the `do update set` clause, written against `table` and
 * `excluded` exactly as the portable multi-row form writes it. Every row must have `columns`.
 */
export function sqliteUpsertRows(
  sqlite: BetterSqlite3.Database,
  table: string,
  columns: readonly string[],
  keys: readonly string[],
  set: string,
  rows: readonly Record<string, unknown>[],
): void {
  if (rows.length === 0) return;
  const statement = sqliteStatement(
    sqlite,
    `insert into ${table} (${columns.join(', ')}) values (${columns.map(() => '?').join(', ')}) on conflict (${keys.join(', ')}) do update set ${set}`,
  );
  const values = new Array<unknown>(columns.length);
  for (const row of rows) {
    for (let i = 0; i < columns.length; i++) values[i] = row[columns[i] as string];
    statement.run(values);
  }
}

/**
 * SQLite fast path for bulk inserts: one prepared single-row statement run per row. `conflict` is the
 * statement's tail (e.g. `on conflict (ip) do nothing`). Every row must have `columns`.
 */
export function sqliteInsertRows(
  sqlite: BetterSqlite3.Database,
  table: string,
  columns: readonly string[],
  conflict: string,
  rows: readonly Record<string, unknown>[],
): void {
  if (rows.length === 0) return;
  const statement = sqliteStatement(
    sqlite,
    `insert into ${table} (${columns.join(', ')}) values (${columns.map(() => '?').join(', ')}) ${conflict}`,
  );
  const values = new Array<unknown>(columns.length);
  for (const row of rows) {
    for (let i = 0; i < columns.length; i++) values[i] = row[columns[i] as string];
    statement.run(values);
  }
}
