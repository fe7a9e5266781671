// Prepared statements on the raw better-sqlite3 handle for bulk writers (ingest, feed import, bulk report, TAXII
// publishing): built once per connection and SQL text, run once per row inside the caller's transaction.
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

const IDENTIFIER = /^[a-z_][a-z0-9_]*$/;

function identifier(name: string): string {
  if (!IDENTIFIER.test(name)) throw new Error(`not a plain identifier: ${name}`);
  return `"${name}"`;
}

/**
 * Inserts `rows` (objects of one shape: column → value) into `table`, one run of one prepared statement
 * per row, each followed by `tail` (an `on conflict …` clause, written against `excluded.*`). The column
 * list is taken from the rows' own keys, so a row builder that gains a column stays complete. Runs on the
 * caller's connection: inside an open transaction the rows are part of it.
 */
export function sqliteInsertObjects(
  sqlite: BetterSqlite3.Database,
  table: string,
  rows: readonly Record<string, unknown>[],
  tail = '',
): void {
  let columns: string[] | null = null;
  let statement: BetterSqlite3.Statement | null = null;
  for (const row of rows) {
    const keys = Object.keys(row);
    if (!columns || keys.length !== columns.length || keys.some((key, i) => key !== columns?.[i])) {
      columns = keys;
      statement = sqliteStatement(
        sqlite,
        `insert into ${identifier(table)} (${keys.map(identifier).join(', ')}) values (${keys
          .map((key) => `@${key}`)
          .join(', ')}) ${tail}`,
      );
    }
    statement?.run(row);
  }
}
