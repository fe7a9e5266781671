// Hot-path queries: built and compiled by Kysely once per dialect, then re-executed with new parameters.
import { type Compilable, CompiledQuery } from 'kysely';
import type { DbExecutor } from './database.js';

type Slot = number | { readonly value: unknown };

const marker = (index: number) => `\u0000vakt-parameter-${index}\u0000`;

/**
 * Wraps a query builder so that building and compiling happen once per dialect; each call only binds
 * `args` into the cached SQL. Every argument must end up as a bound parameter (checked on first use).
 */
export function prepared<Args extends unknown[], Row>(
  arity: number,
  build: (db: DbExecutor, ...args: Args) => Compilable<Row>,
): (db: DbExecutor, ...args: Args) => Promise<Row[]> {
  const cache = new Map<unknown, { sql: string; slots: Slot[] }>();
  return async (db, ...args) => {
    const dialect = db.getExecutor().adapter.constructor;
    let entry = cache.get(dialect);
    if (!entry) {
      const markers = Array.from({ length: arity }, (_, i) => marker(i));
      const compiled = build(db, ...(markers as unknown as Args)).compile();
      const slots: Slot[] = compiled.parameters.map((parameter) => {
        const index = typeof parameter === 'string' ? markers.indexOf(parameter) : -1;
        return index >= 0 ? index : { value: parameter };
      });
      for (let i = 0; i < arity; i++) {
        if (!slots.includes(i)) throw new Error(`prepared query argument ${i} is not bound as a parameter`);
      }
      entry = { sql: compiled.sql, slots };
      cache.set(dialect, entry);
    }
    const parameters = entry.slots.map((slot) => (typeof slot === 'number' ? args[slot] : slot.value));
    const result = await db.executeQuery<Row>(CompiledQuery.raw(entry.sql, parameters));
    return result.rows;
  };
}
