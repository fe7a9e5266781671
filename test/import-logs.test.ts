// Report importers on real server logs and a CSV (SPEC §7, §3.4): no crash, every rejected line counted with a reason, idempotent.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import {
  type ImportSummary,
  importAuthLog,
  importFail2banLog,
  importReportsCsv,
  LOCAL_REPORTER_NAME,
} from '../src/ingest/importers.js';
import { createTestApp, type TestApp } from './helpers/test-app.js';
import { sharedDataFile } from './support/shared-data.js';

const openSsh = sharedDataFile('logs', 'loghub', 'OpenSSH_OpenSSH_2k.log');
const fail2ban = sharedDataFile('logs', 'plesk-server-2020', 'fail2ban.log');

function assertAccounted(summary: ImportSummary) {
  const sum = (reasons: Record<string, number>) => Object.values(reasons).reduce((a, b) => a + b, 0);
  assert.equal(summary.rejected, sum(summary.rejectedReasons));
  assert.equal(summary.skipped, sum(summary.skippedReasons));
  for (const reason of Object.keys(summary.rejectedReasons)) assert.ok(reason.length > 0);
}

async function totals(t: TestApp) {
  const reps = await t.store.db
    .selectFrom('reputations')
    .select(['ip', 'score', 'report_count', 'contributor_weight'])
    .orderBy('ip')
    .execute();
  const reports = await t.store.db
    .selectFrom('reports')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return { reps, reports: Number(reports.n) };
}

describe('log importers', () => {
  let t: TestApp;
  let dir: string;
  before(async () => {
    t = await createTestApp('sqlite');
    dir = mkdtempSync(join(tmpdir(), 'vakt-import-'));
  });
  after(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('imports the loghub OpenSSH sample as brute-force bursts, keeping 2016 times, and again changes nothing', {
    skip: openSsh === null ? 'shared data logs/loghub not found' : undefined,
  }, async () => {
    if (openSsh === null) return;
    const now = t.clock.now();
    const summary = await importAuthLog(t.services, [openSsh], { now, year: 2016 });
    assert.equal(summary.read, 2000);
    assertAccounted(summary);
    assert.ok(summary.accepted > 0, JSON.stringify(summary));
    const row = await t.store.db
      .selectFrom('reports')
      .selectAll()
      .where('category', '=', 'brute_force')
      .orderBy('reported_at')
      .executeTakeFirstOrThrow();
    assert.equal(row.protocol, 'ssh');
    assert.equal(new Date(Number(row.reported_at)).getUTCFullYear(), 2016);
    const before = await totals(t);
    const again = await importAuthLog(t.services, [openSsh], { now: now + 60_000, year: 2016 });
    assert.equal(again.accepted, 0);
    assert.equal(again.duplicates, summary.accepted);
    assert.deepEqual(await totals(t), before);
  });

  it('imports the Plesk fail2ban.log: one report per Ban line, category by jail, and again changes nothing', {
    skip: fail2ban === null ? 'shared data logs/plesk-server-2020 not found' : undefined,
  }, async () => {
    if (fail2ban === null) return;
    const now = t.clock.now();
    const summary = await importFail2banLog(t.services, [fail2ban], { now });
    assertAccounted(summary);
    assert.ok(summary.accepted > 0);
    assert.equal(summary.read, 3670);
    const categories = await t.store.db
      .selectFrom('reports')
      .select('category')
      .where('comment', 'like', 'fail2ban jail%')
      .distinct()
      .execute();
    assert.ok(categories.length >= 1);
    const before = await totals(t);
    const again = await importFail2banLog(t.services, [fail2ban], { now: now + 60_000 });
    assert.equal(again.accepted, 0);
    assert.deepEqual(await totals(t), before);
    const keys = (await t.services.keys.list()).filter((k) => k.name === LOCAL_REPORTER_NAME);
    assert.equal(keys.length, 1);
    assert.equal(keys[0]?.tier, 'unlimited');
  });

  it('imports report CSV (gzip too) with every rejected row counted by reason, idempotently', async () => {
    const csv = [
      'IP,Categories,ReportDate,Comment',
      '45.83.14.1,"18,22",2018-05-06T10:00:00Z,ssh brute force',
      'not-an-ip,18,2018-05-06T10:00:00Z,x',
      '10.1.2.3,18,2018-05-06T10:00:00Z,private',
      '45.83.14.2,14,2018-05-07T10:00:00+02:00,scan',
    ].join('\n');
    const file = join(dir, 'reports.csv.gz');
    writeFileSync(file, gzipSync(csv));
    const now = t.clock.now();
    const summary = await importReportsCsv(t.services, [file], { now });
    assert.equal(summary.read, 4);
    assert.equal(summary.accepted, 2);
    assert.equal(summary.rejected, 2);
    assertAccounted(summary);
    assert.deepEqual(Object.keys(summary.rejectedReasons).sort(), ['invalid_ip', 'ip_not_public']);
    const row = await t.store.db
      .selectFrom('reports')
      .selectAll()
      .where('ip', '=', '45.83.14.2')
      .executeTakeFirstOrThrow();
    assert.equal(Number(row.reported_at), Date.UTC(2018, 4, 7, 8, 0, 0));
    assert.equal(row.category, 'port_scan');
    const again = await importReportsCsv(t.services, [file], { now: now + 60_000 });
    assert.equal(again.accepted, 0);
    assert.equal(again.duplicates, 2);
  });
});
