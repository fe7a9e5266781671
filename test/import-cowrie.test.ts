// Cowrie import on the shared 2018 logs (SPEC §5 calibration, §7): score bounds, breakdowns, idempotent re-import.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { SensorEvent } from '../src/core/events.js';
import { parseIp } from '../src/core/ip.js';
import { DEFAULT_SCORING_POLICY, saturate } from '../src/core/scoring.js';
import { createCowrieParser } from '../src/ingest/cowrie-parser.js';
import { type ImportSummary, importCowrie, readLines } from '../src/ingest/importers.js';
import { createTestApp, type TestApp } from './helpers/test-app.js';
import { sharedDataFile } from './support/shared-data.js';

const dir = sharedDataFile('honeypot', 'cowrie');
const files =
  dir === null
    ? []
    : readdirSync(dir)
        .filter((name) => name.endsWith('.gz'))
        .sort()
        .map((name) => join(dir, name));

interface IpEvidence {
  sessions: Set<string>;
  loggedIn: boolean;
  downloaded: boolean;
  failedLogins: number;
  /** Events other than connect, failed auth and disconnect. */
  other: number;
  /** `${protocol} ${session}` → timestamps of its failed logins. */
  failures: Map<string, number[]>;
}

const DAY_MS = 86_400_000;

/**
 * The `<protocol>_brute_force` count decision 0605 defines, computed from the events alone: sessions with
 * ≥ 5 failed logins, plus UTC days on which the other sessions' failed logins add up to ≥ 5.
 */
function expectedBruteForce(e: IpEvidence, protocol: string): { sessions: number; days: number } {
  let sessions = 0;
  const days = new Map<number, number>();
  for (const [key, times] of e.failures) {
    if (!key.startsWith(`${protocol} `)) continue;
    if (times.length >= 5) {
      sessions++;
      continue;
    }
    for (const ts of times) days.set(Math.floor(ts / DAY_MS), (days.get(Math.floor(ts / DAY_MS)) ?? 0) + 1);
  }
  return { sessions, days: [...days.values()].filter((n) => n >= 5).length };
}

/** What each IP did, read independently of the store from the same files. */
async function evidenceByIp(): Promise<Map<string, IpEvidence>> {
  const parser = createCowrieParser({ now: Date.now(), maxAgeMs: null });
  const out = new Map<string, IpEvidence>();
  for (const file of files) {
    for await (const line of readLines(file)) {
      const event: SensorEvent | null = parser.push(line);
      if (event === null) continue;
      let entry = out.get(event.srcIp);
      if (!entry) {
        entry = {
          sessions: new Set(),
          loggedIn: false,
          downloaded: false,
          failedLogins: 0,
          other: 0,
          failures: new Map(),
        };
        out.set(event.srcIp, entry);
      }
      entry.sessions.add(event.session);
      if (event.type === 'auth' && event.success) entry.loggedIn = true;
      else if (event.type === 'auth') {
        entry.failedLogins++;
        const key = `${event.protocol} ${event.session}`;
        entry.failures.set(key, [...(entry.failures.get(key) ?? []), event.ts]);
      } else if (event.type === 'download') entry.downloaded = true;
      if (event.type !== 'connect' && event.type !== 'disconnect' && event.type !== 'auth') entry.other++;
      if (event.type === 'auth' && event.success) entry.other++;
    }
  }
  return out;
}

describe('Cowrie import (shared logs)', {
  skip: dir === null ? 'shared data honeypot/cowrie not found' : undefined,
}, () => {
  let t: TestApp;
  let first: ImportSummary;
  let evidence: Map<string, IpEvidence>;
  const scores = new Map<string, number>();

  before(async () => {
    t = await createTestApp('sqlite');
    first = await importCowrie(t.services, files, { now: t.clock.now() });
    evidence = await evidenceByIp();
    for (const row of await t.store.db.selectFrom('reputations').select(['ip', 'score']).execute()) {
      scores.set(row.ip, row.score);
    }
  });
  after(async () => t?.close());

  it('imports every event, keeps 2018 timestamps and counts every line', () => {
    assert.equal(first.rejected, 0);
    assert.ok(first.accepted > 60_000, `accepted ${first.accepted}`);
    assert.equal(first.read, first.accepted + first.skipped + first.rejected + first.ignored);
    assert.equal(scores.size, evidence.size);
  });

  it('scores every IP that logged in and downloaded a file at 90 or more', () => {
    const hits = [...evidence].filter(([, e]) => e.loggedIn && e.downloaded);
    assert.ok(hits.length > 0);
    for (const [ip] of hits) assert.ok((scores.get(ip) ?? 0) >= 90, `${ip} scored ${scores.get(ip)}`);
  });

  it('scores every IP whose only evidence is one failed login at 30 or less', () => {
    const single = [...evidence].filter(
      ([, e]) => e.sessions.size === 1 && e.failedLogins === 1 && e.other === 0,
    );
    assert.ok(single.length > 50, `${single.length} such IPs`);
    for (const [ip] of single) assert.ok((scores.get(ip) ?? 100) <= 30, `${ip} scored ${scores.get(ip)}`);
  });

  it('gives credential brute force to IPs trying one password per connection (across sessions, per UTC day)', async () => {
    const rows = await t.store.db
      .selectFrom('reputation_behaviors')
      .select(['ip', 'behavior', 'count'])
      .where('behavior', 'in', ['ssh_brute_force', 'telnet_brute_force'])
      .execute();
    const stored = new Map(rows.map((r) => [`${r.ip} ${r.behavior}`, Number(r.count)]));
    let crossOnly = 0;
    for (const [ip, e] of evidence) {
      for (const protocol of ['ssh', 'telnet']) {
        const expected = expectedBruteForce(e, protocol);
        if (expected.sessions === 0 && expected.days > 0) crossOnly++;
        const count = stored.get(`${ip} ${protocol}_brute_force`) ?? 0;
        assert.equal(
          count,
          expected.sessions + expected.days,
          `${ip} ${protocol}: ${JSON.stringify(expected)}`,
        );
      }
    }
    // The logs hold hundreds of such slow guessers; none of them showed brute force one session at a time.
    assert.ok(crossOnly > 200, `${crossOnly} IPs with brute force across sessions only`);
  });

  it('explains every score by its breakdown', async () => {
    for (const ip of scores.keys()) {
      const address = parseIp(ip);
      assert.ok(address.ok, ip);
      const parsed = await t.services.reputation.check(
        address.ip,
        { verbose: false, maxAgeDays: null, protocols: null, ignoreWhitelist: false },
        t.clock.now(),
      );
      const b = parsed.scoreBreakdown;
      assert.ok(b, ip);
      assert.equal(parsed.confidenceLevel, scores.get(ip), ip);
      const raw = (b.sensor + b.contributor + b.feed) * b.crossSourceMultiplier;
      assert.ok(Math.abs(raw - b.raw) <= 0.2, `${ip}: raw ${b.raw} vs ${raw}`);
      const curve = saturate(b.raw, DEFAULT_SCORING_POLICY);
      const expected = b.floorApplied ? DEFAULT_SCORING_POLICY.criticalFloor : curve;
      assert.ok(Math.abs(expected - b.saturated) <= 1, `${ip}: saturated ${b.saturated} vs ${expected}`);
      assert.equal(parsed.confidenceLevel, Math.round(b.saturated * b.whitelistFactor), ip);
    }
  });

  it('changes nothing when the same files are imported again', async () => {
    const again = await importCowrie(t.services, files, { now: t.clock.now() + 60_000 });
    assert.equal(again.accepted, 0);
    assert.equal(again.duplicates, first.accepted);
    const rows = await t.store.db.selectFrom('reputations').select(['ip', 'score']).execute();
    assert.equal(rows.length, scores.size);
    for (const row of rows) assert.equal(row.score, scores.get(row.ip), row.ip);
  });
});
