// Migration 0003: TAXII indicator versions and the feed clock that hands out strictly increasing date_added values.
import type { Kysely, Migration } from 'kysely';
import type { Dialect } from '../database.js';

// biome-ignore lint/suspicious/noExplicitAny: migrations operate on an untyped schema by design
type AnyDb = Kysely<any>;

export function taxiiMigration(dialect: Dialect): Migration {
  const bigint = dialect === 'sqlite' ? 'integer' : 'bigint';
  return {
    async up(db: AnyDb) {
      let versions = db.schema.createTable('taxii_versions');
      versions =
        dialect === 'sqlite'
          ? versions.addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement())
          : versions.addColumn('seq', 'bigserial', (c) => c.primaryKey());
      await versions
        .addColumn('stix_id', 'text', (c) => c.notNull())
        .addColumn('object_type', 'text', (c) => c.notNull())
        // Null for the Identity and the marking definition.
        .addColumn('ip', 'text')
        // Epoch µs; unique and strictly increasing in commit order (taxii_clock), the keyset of every page.
        .addColumn('date_added_us', bigint, (c) => c.notNull().unique())
        .addColumn('created_ms', bigint, (c) => c.notNull())
        .addColumn('modified_ms', bigint, (c) => c.notNull())
        .addColumn('confidence', 'integer')
        .addColumn('revoked', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('is_first', 'integer', (c) => c.notNull())
        .addColumn('is_latest', 'integer', (c) => c.notNull())
        // The serialised STIX object: a page is a join of stored strings, never a rebuild.
        .addColumn('object', 'text', (c) => c.notNull())
        .execute();
      // The default listing (match[version]=last) is a range scan on this index.
      await db.schema
        .createIndex('taxii_versions_latest_idx')
        .on('taxii_versions')
        .columns(['is_latest', 'date_added_us'])
        .execute();
      await db.schema
        .createIndex('taxii_versions_first_idx')
        .on('taxii_versions')
        .columns(['is_first', 'date_added_us'])
        .execute();
      await db.schema
        .createIndex('taxii_versions_stix_id_idx')
        .on('taxii_versions')
        .columns(['stix_id', 'date_added_us'])
        .execute();
      await db.schema
        .createIndex('taxii_versions_ip_idx')
        .on('taxii_versions')
        .columns(['ip', 'date_added_us'])
        .execute();
      await db.schema
        .createTable('taxii_clock')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('last_us', bigint, (c) => c.notNull())
        .execute();
      await db.insertInto('taxii_clock').values({ id: 1, last_us: 0 }).execute();
    },
  };
}
