// Daily range partitions of raw telemetry on PostgreSQL (SPEC §6): created ahead of time, dropped whole for retention.
import { sql } from 'kysely';
import { DAY_MS } from '../core/time.js';
import type { Db, DbExecutor } from './database.js';

/**
 * Tables partitioned by an integer day column (days since the epoch, UTC). Each has a `<table>_default`
 * partition for rows outside every daily partition. A feature adding raw telemetry (sensor events)
 * creates its table `partition by range (<column>)` with a default partition and lists it here.
 */
export const PARTITIONED_TABLES: readonly { table: string; column: string }[] = [
  { table: 'reports', column: 'day' },
];

/** How far ahead `ensurePartitions` creates daily partitions by default. */
export const DAYS_AHEAD = 7;

// Serialises partition DDL across every instance sharing the database.
const PARTITION_DDL_LOCK = 7_461_001;

/** The partition name for one day: `reports_20260315`. */
export function partitionName(table: string, day: number): string {
  return `${table}_${new Date(day * DAY_MS).toISOString().slice(0, 10).replace(/-/g, '')}`;
}

export interface DailyPartition {
  readonly name: string;
  readonly day: number;
}

/** The daily partitions of `table` that exist now (not the default one), oldest first. */
export async function listDailyPartitions(db: DbExecutor, table: string): Promise<DailyPartition[]> {
  const result = await sql<{ name: string }>`
    select c.relname as name
    from pg_inherits i
    join pg_class c on c.oid = i.inhrelid
    join pg_class p on p.oid = i.inhparent
    where p.relname = ${table} and p.relnamespace = current_schema()::regnamespace`.execute(db);
  const pattern = new RegExp(`^${table}_(\\d{4})(\\d{2})(\\d{2})$`);
  const out: DailyPartition[] = [];
  for (const { name } of result.rows) {
    const match = pattern.exec(name);
    if (!match) continue;
    out.push({ name, day: Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3])) / DAY_MS });
  }
  return out.sort((a, b) => a.day - b.day);
}

/**
 * Makes sure `table` has one partition per day from `fromDay` to `toDay` inclusive; returns the names
 * created. Rows for a new day already sitting in the default partition are moved into it, so creation
 * never fails on them. Waits at most 3 s for locks (then throws; the next run retries) so it never
 * queues requests behind it for long.
 */
export async function ensurePartitions(
  db: Db,
  table: string,
  column: string,
  fromDay: number,
  toDay: number,
): Promise<string[]> {
  const existing = new Set((await listDailyPartitions(db, table)).map((p) => p.day));
  const created: string[] = [];
  for (let day = fromDay; day <= toDay; day++) {
    if (existing.has(day)) continue;
    const name = partitionName(table, day);
    await db.transaction().execute(async (tx) => {
      await sql`set local lock_timeout = '3s'`.execute(tx);
      await sql`select pg_advisory_xact_lock(${PARTITION_DDL_LOCK})`.execute(tx);
      const already =
        await sql`select 1 from pg_class where relname = ${name} and relnamespace = current_schema()::regnamespace`.execute(
          tx,
        );
      if (already.rows.length > 0) return;
      const parent = sql.table(table);
      const partition = sql.table(name);
      const fallback = sql.table(`${table}_default`);
      const col = sql.ref(column);
      const stray = await sql`select 1 from ${fallback} where ${col} = ${day} limit 1`.execute(tx);
      if (stray.rows.length === 0) {
        await sql`create table ${partition} partition of ${parent} for values from (${sql.lit(day)}) to (${sql.lit(day + 1)})`.execute(
          tx,
        );
      } else {
        await sql`create table ${partition} (like ${parent} including defaults including constraints)`.execute(
          tx,
        );
        await sql`with moved as (delete from ${fallback} where ${col} = ${day} returning *)
                  insert into ${partition} select * from moved`.execute(tx);
        await sql`alter table ${parent} attach partition ${partition} for values from (${sql.lit(day)}) to (${sql.lit(day + 1)})`.execute(
          tx,
        );
      }
      created.push(name);
    });
  }
  return created;
}

export interface DroppedPartition extends DailyPartition {
  readonly rows: number;
}

/**
 * Drops every daily partition of `table` whose day is before `cutoffDay`, counting its rows first.
 * With `dryRun` only counts. Rows older than the cutoff in the default partition are left to the
 * caller's batched delete.
 */
export async function dropPartitionsBefore(
  db: Db,
  table: string,
  cutoffDay: number,
  dryRun: boolean,
): Promise<DroppedPartition[]> {
  const out: DroppedPartition[] = [];
  for (const partition of await listDailyPartitions(db, table)) {
    if (partition.day >= cutoffDay) break;
    const counted = await sql<{
      rows: number;
    }>`select count(*)::int8 as rows from ${sql.table(partition.name)}`.execute(db);
    const rows = Number(counted.rows[0]?.rows ?? 0);
    if (!dryRun) {
      await db.transaction().execute(async (tx) => {
        await sql`set local lock_timeout = '3s'`.execute(tx);
        await sql`select pg_advisory_xact_lock(${PARTITION_DDL_LOCK})`.execute(tx);
        await sql`drop table if exists ${sql.table(partition.name)}`.execute(tx);
      });
    }
    out.push({ ...partition, rows });
  }
  return out;
}
