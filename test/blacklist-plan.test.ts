// Query plans of the blacklist hot queries on both engines: index range reads in list order, never a sort.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import {
  type BlacklistFilter,
  blacklistFingerprint,
  blacklistPages,
  qualifiesBeyond,
} from '../src/store/blacklist-repository.js';
import type { Database } from '../src/store/database.js';
import { Store } from '../src/store/store.js';
import { createTestDatabase, ENGINES, skipReason, type TestDatabase } from './helpers/engines.js';

const schema = { hasMaxSeverity: false, hasProtocols: false };

function filter(ignoreWhitelist: boolean): BlacklistFilter {
  return {
    scoreMinimum: 50,
    ignoreWhitelist,
    ipVersion: null,
    onlyCountries: null,
    exceptCountries: null,
    onlyAsn: null,
    exceptAsn: null,
    protocols: null,
    minSeverity: null,
    excludedKeyRanges: [],
  };
}

interface Captured {
  readonly sql: string;
  readonly parameters: readonly unknown[];
}

for (const engine of ENGINES) {
  describe(`blacklist query plans (${engine})`, { skip: skipReason(engine) }, () => {
    let database: TestDatabase;
    let captured: Captured[] = [];
    let db: Kysely<Database>;
    let explain: (query: Captured) => Promise<string>;
    let close: () => Promise<void>;

    before(async () => {
      database = await createTestDatabase(engine);
      await (await Store.open(database.url)).close();
      const log = (event: { query: Captured }) => {
        captured.push({ sql: event.query.sql, parameters: event.query.parameters });
      };
      if (engine === 'sqlite') {
        const raw = new BetterSqlite3(database.url.slice('sqlite:'.length));
        db = new Kysely<Database>({ dialect: new SqliteDialect({ database: raw }), log });
        explain = async (q) =>
          (
            raw.prepare(`explain query plan ${q.sql}`).all(...(q.parameters as unknown[])) as {
              detail: string;
            }[]
          )
            .map((r) => r.detail)
            .join('\n');
        close = async () => {
          await db.destroy();
        };
      } else {
        const pool = new pg.Pool({ connectionString: database.url, max: 2 });
        db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }), log });
        // Forbid the alternatives so that the plan shows whether an index can serve the order at all.
        const client = await pool.connect();
        explain = async (q) => {
          await client.query('set enable_seqscan = off');
          await client.query('set enable_sort = off');
          const result = await client.query(`explain ${q.sql}`, q.parameters as unknown[]);
          return result.rows.map((r: Record<string, string>) => r['QUERY PLAN']).join('\n');
        };
        close = async () => {
          client.release();
          await db.destroy();
        };
      }
    });
    after(async () => {
      await close?.();
      await database?.drop();
    });

    for (const ignoreWhitelist of [false, true]) {
      it(`pages, fingerprint and the tier-cap probe read the list index (ignoreWhitelist=${ignoreWhitelist})`, async () => {
        captured = [];
        for await (const _page of blacklistPages(db, filter(ignoreWhitelist), schema, 10, 5)) {
          // Empty table: one page query is enough to capture its SQL.
        }
        await blacklistFingerprint(db, filter(ignoreWhitelist), schema, 350_000);
        await qualifiesBeyond(db, filter(ignoreWhitelist), schema, 350_000);
        // Capture a second page's SQL (the keyset condition) by running the page query after a row.
        assert.equal(captured.length, 3);
        const index = ignoreWhitelist ? 'reputations_list_raw_idx' : 'reputations_list_idx';
        for (const query of captured) {
          const plan = await explain(query);
          if (engine === 'sqlite') assert.doesNotMatch(plan, /TEMP B-TREE/, `${query.sql}\n${plan}`);
          else assert.doesNotMatch(plan, /\bSort\b/, `${query.sql}\n${plan}`);
          assert.match(plan, new RegExp(index), `${query.sql}\n${plan}`);
        }
      });

      it(`a keyset page after a row is an index range read (ignoreWhitelist=${ignoreWhitelist})`, async () => {
        const column = ignoreWhitelist ? 'score_raw' : 'score';
        const compiled = db
          .selectFrom('reputations')
          .select(['ip'])
          .where(column, '>=', 50)
          .where((eb) => eb(eb.refTuple(column, 'last_seen', 'ip'), '<', eb.tuple(80, 1000, '1.2.3.4')))
          .orderBy(column, 'desc')
          .orderBy('last_seen', 'desc')
          .orderBy('ip', 'desc')
          .limit(5000)
          .compile();
        const plan = await explain({ sql: compiled.sql, parameters: compiled.parameters });
        if (engine === 'sqlite') {
          assert.doesNotMatch(plan, /TEMP B-TREE/, plan);
          // A range start on the row value, not a full index walk with a per-row test.
          assert.match(plan, /SEARCH .*USING (COVERING )?INDEX/, plan);
        } else {
          assert.doesNotMatch(plan, /\bSort\b/, plan);
          assert.match(plan, /Index Cond: .*ROW/, plan);
        }
      });
    }
  });
}
