// Retention (SPEC §6) on both stores: raw reports by age (partitions dropped whole on PostgreSQL), reputations by inactivity.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseIp } from '../src/core/ip.js';
import { DAY_MS, utcDay } from '../src/core/time.js';
import { JobRunner } from '../src/services/jobs.js';
import type { AuthenticatedKey } from '../src/services/key-service.js';
import { ensurePartitions, listDailyPartitions } from '../src/store/partitions.js';
import { ENGINES, skipReason } from './helpers/engines.js';
import { bearer, createTestApp, type TestApp } from './helpers/test-app.js';

const HOUR = 3_600_000;

function ipOf(text: string) {
  const parsed = parseIp(text);
  if (!parsed.ok) throw new Error(text);
  return parsed.ip;
}

async function reporterKey(t: TestApp): Promise<AuthenticatedKey> {
  const secret = await t.key('unlimited');
  const auth = await t.services.keys.authenticate(secret);
  if (!auth.ok) throw new Error('key');
  return auth.key;
}

/** One report per day for 40 days (IP 45.1.<age>.1 reported <age> days ago), plus one IP seen 39 and 2 days ago. */
async function seed(t: TestApp, key: AuthenticatedKey) {
  const now = t.clock.now();
  for (let age = 0; age < 40; age++) {
    await t.services.reports.report(
      key,
      {
        ip: ipOf(`45.1.${age}.1`),
        categories: ['brute_force'],
        protocol: 'ssh',
        comment: null,
        reportedAt: now - age * DAY_MS - HOUR,
      },
      now,
    );
  }
  for (const [age, category] of [
    [39, 'port_scan'],
    [2, 'brute_force'],
  ] as const) {
    await t.services.reports.report(
      key,
      {
        ip: ipOf('45.2.0.1'),
        categories: [category],
        protocol: null,
        comment: null,
        reportedAt: now - age * DAY_MS,
      },
      now,
    );
  }
}

async function counts(t: TestApp) {
  const db = t.store.db;
  const reports = await db.selectFrom('reports').select(['ip', 'day']).execute();
  const reputations = await db.selectFrom('reputations').select(['ip', 'last_seen']).execute();
  return { reports, reputations };
}

for (const engine of ENGINES) {
  describe(`retention on ${engine}`, { skip: skipReason(engine) }, () => {
    it('removes exactly what is older than 30 days and keeps every reputation seen in the window', async () => {
      const t = await createTestApp(engine);
      try {
        const now = t.clock.now();
        const today = utcDay(now);
        if (engine === 'postgres') {
          // Days 31–35 ago get daily partitions; older rows fall into the default partition.
          await ensurePartitions(t.store.db, 'reports', 'day', today - 35, today + 1);
        }
        const key = await reporterKey(t);
        await seed(t, key);
        const purged: string[] = [];
        t.services.retention.onPurge(async (tx, ips) => {
          // Hooks run inside the purge transaction, after the rows are gone.
          const left = await tx.selectFrom('reputations').select('ip').where('ip', 'in', ips).execute();
          assert.equal(left.length, 0);
          purged.push(...ips);
        });
        const before = await counts(t);
        const cutoffDay = today - 30;
        const cutoff = now - 30 * DAY_MS;
        const expectedReports = before.reports.filter((r) => Number(r.day) >= cutoffDay);
        const expectedReputations = before.reputations.filter((r) => Number(r.last_seen) >= cutoff);
        assert.equal(before.reports.length, 42);
        assert.equal(before.reputations.length, 41);

        const dry = await t.services.retention.run(now, true);
        assert.equal(dry.telemetry.reports, before.reports.length - expectedReports.length);
        assert.equal(dry.reputations, before.reputations.length - expectedReputations.length);
        assert.deepEqual(
          (await counts(t)).reports.length,
          before.reports.length,
          'a dry run deletes nothing',
        );

        const result = await t.services.retention.run(now);
        assert.equal(result.telemetry.reports, dry.telemetry.reports);
        assert.equal(result.reputations, dry.reputations);
        const afterRun = await counts(t);
        const sortIps = (rows: { ip: string }[]) => rows.map((r) => r.ip).sort();
        assert.deepEqual(sortIps(afterRun.reports), sortIps(expectedReports));
        assert.deepEqual(sortIps(afterRun.reputations), sortIps(expectedReputations));
        assert.ok(
          afterRun.reputations.some((r) => r.ip === '45.2.0.1'),
          'seen 2 days ago: kept',
        );
        assert.deepEqual(
          purged.sort(),
          before.reputations
            .filter((r) => Number(r.last_seen) < cutoff)
            .map((r) => r.ip)
            .sort(),
        );
        if (engine === 'postgres') {
          assert.equal(result.partitionsDropped, 5);
          const left = await listDailyPartitions(t.store.db, 'reports');
          assert.ok(left.every((p) => p.day >= cutoffDay));
        }

        // Child rows of purged IPs are gone; those of kept IPs stay.
        for (const table of ['reputation_reporters', 'reputation_categories', 'reputation_days'] as const) {
          const rows = await t.store.db.selectFrom(table).select('ip').execute();
          assert.ok(
            rows.every((r) => !purged.includes(r.ip)),
            table,
          );
          assert.ok(
            rows.some((r) => r.ip === '45.2.0.1'),
            table,
          );
        }
        const secret = await t.key('unlimited');
        const gone = await t.app.inject({ url: `/v1/key/check/${purged[0]}`, headers: bearer(secret) });
        assert.equal(gone.json().found, false);
        const kept = await t.app.inject({ url: '/v1/key/check/45.2.0.1', headers: bearer(secret) });
        assert.equal(kept.json().found, true);
        assert.equal(kept.json().contributor.reportCount, 2);

        // A second pass finds nothing more.
        const again = await t.services.retention.run(now);
        assert.equal(again.telemetry.reports, 0);
        assert.equal(again.reputations, 0);
      } finally {
        await t.close();
      }
    });

    it('purges username and e-mail look-up rows not seen within the window', async () => {
      const t = await createTestApp(engine);
      try {
        const now = t.clock.now();
        const seen = (age: number) => now - age * DAY_MS;
        await t.store.db
          .insertInto('sensor_usernames')
          .values([
            { username: 'root', protocol: 'ssh', sessions: 9, first_seen: seen(60), last_seen: seen(1) },
            { username: 'oracle', protocol: 'ssh', sessions: 2, first_seen: seen(50), last_seen: seen(31) },
            { username: 'admin', protocol: 'telnet', sessions: 1, first_seen: seen(45), last_seen: seen(40) },
          ])
          .execute();
        await t.store.db
          .insertInto('sensor_recipients')
          .values([
            {
              email: 'a@example.com',
              protocol: 'smtp',
              messages: 3,
              first_seen: seen(40),
              last_seen: seen(29),
            },
            {
              email: 'b@example.com',
              protocol: 'smtp',
              messages: 1,
              first_seen: seen(40),
              last_seen: seen(35),
            },
          ])
          .execute();
        const dry = await t.services.retention.run(now, true);
        assert.deepEqual(dry.lookups, { sensor_usernames: 2, sensor_recipients: 1 });
        assert.equal(
          (await t.store.db.selectFrom('sensor_usernames').select('username').execute()).length,
          3,
        );
        const result = await t.services.retention.run(now);
        assert.deepEqual(result.lookups, { sensor_usernames: 2, sensor_recipients: 1 });
        const users = await t.store.db.selectFrom('sensor_usernames').select('username').execute();
        assert.deepEqual(
          users.map((r) => r.username),
          ['root'],
        );
        const mails = await t.store.db.selectFrom('sensor_recipients').select('email').execute();
        assert.deepEqual(
          mails.map((r) => r.email),
          ['a@example.com'],
        );
        const secret = await t.key('unlimited');
        const gone = await t.app.inject({ url: '/v1/key/username/oracle', headers: bearer(secret) });
        assert.equal(gone.statusCode, 404);
        const kept = await t.app.inject({ url: '/v1/key/username/root', headers: bearer(secret) });
        assert.equal(kept.statusCode, 200);
      } finally {
        await t.close();
      }
    });

    it('deletes in batches smaller than the backlog', async () => {
      const t = await createTestApp(engine, { VAKT_RETENTION_DAYS: '5' });
      try {
        const key = await reporterKey(t);
        await seed(t, key);
        const { RetentionService } = await import('../src/services/retention-service.js');
        const small = new RetentionService(t.store, { retentionDays: 5, batchSize: 3, pauseMs: 0 });
        const result = await small.run(t.clock.now());
        assert.ok(result.reputations > 3);
        const left = await t.store.db.selectFrom('reputations').select('ip').execute();
        assert.equal(left.length, 41 - result.reputations);
      } finally {
        await t.close();
      }
    });

    it('runs a daily job once across runners sharing the database', async () => {
      const t = await createTestApp(engine);
      try {
        let runs = 0;
        const job = {
          name: 'test-job',
          intervalMs: DAY_MS,
          run: async () => {
            runs++;
            await new Promise((resolve) => setTimeout(resolve, 50));
          },
        };
        const a = new JobRunner(t.store, t.clock);
        const b = new JobRunner(t.store, t.clock);
        a.register(job);
        b.register(job);
        const outcomes = await Promise.all([a.runIfDue('test-job'), b.runIfDue('test-job')]);
        assert.equal(runs, 1);
        assert.ok(outcomes.includes('ran'));
        assert.equal(await b.runIfDue('test-job'), 'not_due');
        t.clock.advance(DAY_MS);
        assert.equal(await b.runIfDue('test-job'), 'ran');
        assert.equal(await a.runIfDue('test-job', true), 'ran');
        assert.equal(runs, 3);
      } finally {
        await t.close();
      }
    });
  });
}

describe('vakt purge', () => {
  it('reports counts with --dry-run --json and deletes without it', async () => {
    const { spawnVakt } = await import('./helpers/processes.js');
    const t = await createTestApp('sqlite');
    try {
      // Seeded against the real clock, since the CLI runs with it.
      t.clock.set(Date.now());
      const key = await reporterKey(t);
      await seed(t, key);
      const env = { VAKT_DATABASE_URL: t.database.url, VAKT_LOG_LEVEL: 'silent' };
      const run = async (args: string[]) => {
        const p = spawnVakt(['purge', ...args], env);
        const code = await new Promise<number | null>((done) => p.child.once('exit', (c) => done(c)));
        assert.equal(code, 0, p.output());
        return p.output();
      };
      const dry = JSON.parse(await run(['--dry-run', '--json'])) as {
        reputations: number;
        telemetry: { reports: number };
      };
      assert.equal(dry.reputations, 10);
      assert.ok(dry.telemetry.reports >= 9);
      assert.equal((await t.store.db.selectFrom('reputations').select('ip').execute()).length, 41);
      const text = await run([]);
      assert.match(text, /Removed 10 reputations/);
      assert.equal((await t.store.db.selectFrom('reputations').select('ip').execute()).length, 31);
    } finally {
      await t.close();
    }
  });
});
