// Row-at-a-time writes through cached raw prepared statements on SQLite (bulk paths): no query builder per row.
import type BetterSqlite3 from 'better-sqlite3';

const cache = new WeakMap<BetterSqlite3.Database, Map<string, BetterSqlite3.Statement>>();

/** A prepared statement for `sqlText`, prepared once per connection. */
export function cachedStatement(sqlite: BetterSqlite3.Database, sqlText: string): BetterSqlite3.Statement {
  let statements = cache.get(sqlite);
  if (!statements) {
    statements = new Map();
    cache.set(sqlite, statements);
  }
  let statement = statements.get(sqlText);
  if (!statement) {
    statement = sqlite.prepare(sqlText);
    statements.set(sqlText, statement);
  }
  return statement;
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
export function sqliteInsertRows(
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
      statement = cachedStatement(
        sqlite,
        `insert into ${identifier(table)} (${keys.map(identifier).join(', ')}) values (${keys
          .map((key) => `@${key}`)
          .join(', ')}) ${tail}`,
      );
    }
    statement?.run(row);
  }
}
