// API key rows: insert, look up by hash, list, disable, rotate.
import type { ApiKeysTable, DbExecutor } from './database.js';
import { prepared } from './prepared.js';

export type ApiKeyRow = ApiKeysTable;

export async function insertKey(db: DbExecutor, row: ApiKeyRow): Promise<void> {
  await db.insertInto('api_keys').values(row).execute();
}

const selectKeyByHash = prepared(1, (db, keyHash: string) =>
  db.selectFrom('api_keys').selectAll().where('key_hash', '=', keyHash),
);

export async function findKeyByHash(db: DbExecutor, keyHash: string): Promise<ApiKeyRow | undefined> {
  return (await selectKeyByHash(db, keyHash))[0];
}

export async function findKeyById(db: DbExecutor, id: string): Promise<ApiKeyRow | undefined> {
  return db.selectFrom('api_keys').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function listKeys(db: DbExecutor): Promise<ApiKeyRow[]> {
  return db.selectFrom('api_keys').selectAll().orderBy('created_at').orderBy('id').execute();
}

export async function countKeys(db: DbExecutor): Promise<number> {
  const row = await db
    .selectFrom('api_keys')
    .select((eb) => eb.fn.countAll<number>().as('count'))
    .executeTakeFirstOrThrow();
  return Number(row.count);
}

export async function setKeyDisabled(db: DbExecutor, id: string, at: number | null): Promise<boolean> {
  const result = await db
    .updateTable('api_keys')
    .set({ disabled_at: at })
    .where('id', '=', id)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

export async function replaceKeyHash(
  db: DbExecutor,
  id: string,
  keyHash: string,
  displayPrefix: string,
): Promise<boolean> {
  const result = await db
    .updateTable('api_keys')
    .set({ key_hash: keyHash, display_prefix: displayPrefix })
    .where('id', '=', id)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}
