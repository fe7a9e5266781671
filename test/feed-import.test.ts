// Feed import on every engine: case 011 (dirty feed), idempotent re-import, scores, CIDR listings, allowlist, gzip, Tor exits.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { importFeed } from '../src/ingest/feed-import.js';
import { ENGINES, skipReason } from './helpers/engines.js';
import { bearer, createTestApp, type TestApp } from './helpers/test-app.js';
import { sharedDataFile } from './support/shared-data.js';

const CASE_011 = [
  '# dshield sample',
  '; another comment style',
  '45.83.12.40 ',
  '45.83.12.41\t7',
  '1..218.28',
  '45.83.0.0/24',
  '10.0.0.0/8',
  '',
  'http://example.com/list.txt',
  '',
].join('\r\n');

for (const engine of ENGINES) {
  describe(`feed import (${engine})`, { skip: skipReason(engine) }, () => {
    let t: TestApp;
    let key: string;
    let dir: string;
    const file = (name: string, content: string | Buffer) => {
      const path = join(dir, name);
      writeFileSync(path, content);
      return path;
    };
    const check = async (ip: string, query = '') =>
      (
        await t.app.inject({ method: 'GET', url: `/v1/key/check/${ip}${query}`, headers: bearer(key) })
      ).json();

    before(async () => {
      t = await createTestApp(engine, { VAKT_ALLOWLIST: '198.51.100.0/24,45.90.1.1' });
      key = await t.key('tier_1');
      dir = mkdtempSync(join(tmpdir(), 'vakt-feed-'));
    });
    after(async () => {
      await t?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('imports the valid entries of a dirty feed and counts each rejected line by reason (case 011)', async () => {
      const path = file('dshield.txt', CASE_011);
      const summary = await importFeed(t.services, [path], { name: 'dshield', trust: 0.3 });
      assert.equal(summary.read, 9);
      assert.equal(summary.accepted, 3);
      assert.deepEqual(summary.rejected, { malformed: 1, non_public: 1, unsupported: 1, allowlisted: 0 });
      assert.equal(summary.ignored, 3);
      assert.equal(summary.entries, 3);
      assert.equal(summary.added, 3);
      assert.equal(summary.rescored, 2);

      const listed = await check('45.83.12.41');
      assert.equal(listed.found, true);
      assert.equal(listed.feeds.length, 1);
      assert.equal(listed.feeds[0].name, 'dshield');
      assert.match(listed.feeds[0].listedAt, /^\d{4}-\d\d-\d\dT/);
      assert.ok(listed.confidenceLevel > 0);
      assert.ok(listed.scoreBreakdown.feed > 0);
      assert.equal(listed.contributor.reportCount, 0);
    });

    it('changes nothing when the same file is imported again', async () => {
      const before = await check('45.83.12.40');
      t.clock.advance(3_600_000);
      const summary = await importFeed(t.services, [join(dir, 'dshield.txt')], {
        name: 'dshield',
        trust: 0.3,
      });
      assert.equal(summary.added, 0);
      assert.equal(summary.removed, 0);
      assert.equal(summary.rescored, 0);
      assert.deepEqual(summary.rejected, { malformed: 1, non_public: 1, unsupported: 1, allowlisted: 0 });
      assert.deepEqual(await check('45.83.12.40'), before);
    });

    it('shows and scores a CIDR listing for an address inside it without creating a row for the range', async () => {
      const inside = await check('45.83.0.77');
      // Decision 0702: the listing counts in the score computed on read, like a single listed address.
      const single = await check('45.83.12.41');
      assert.equal(inside.found, true);
      assert.deepEqual(
        inside.feeds.map((f: { name: string }) => f.name),
        ['dshield'],
      );
      assert.ok(inside.confidenceLevel > 0);
      assert.equal(inside.confidenceLevel, single.confidenceLevel);
      assert.deepEqual(inside.scoreBreakdown, single.scoreBreakdown);
      assert.equal(inside.contributor.reportCount, 0);
      assert.equal(inside.firstSeen, inside.feeds[0].listedAt);
      const rows = await t.store.db
        .selectFrom('reputations')
        .select('ip')
        .where('ip', 'like', '45.83.0.%')
        .execute();
      assert.deepEqual(rows, [], 'no rows for the range');
      const outside = await check('45.83.1.77');
      assert.deepEqual(outside.feeds, []);
      assert.equal(outside.found, false);
      assert.equal(outside.confidenceLevel, 0);
      // Bulk check answers the address inside the listing as check does.
      const bulk = await t.app.inject({
        method: 'POST',
        url: '/v1/key/bulk-check-inline',
        headers: { ...bearer(key), 'content-type': 'text/plain' },
        payload: '45.83.0.77\n45.83.1.77\n',
      });
      assert.equal(bulk.statusCode, 200, bulk.body);
      assert.equal(bulk.json().found, 1);
      assert.deepEqual(bulk.json().results, [
        {
          ip: '45.83.0.77',
          found: true,
          confidenceLevel: inside.confidenceLevel,
          countryCode: inside.geolocation.countryCode,
          lastSeen: Date.parse(inside.lastSeen),
        },
        { ip: '45.83.1.77', found: false, confidenceLevel: 0, countryCode: null, lastSeen: null },
      ]);
    });

    it('adds each listing feed trust, and caps feed-only scores at 50', async () => {
      const alone = (await check('45.83.12.40')).confidenceLevel;
      const list = file('many.txt', '45.83.12.40\n');
      for (const name of ['f1', 'f2', 'f3', 'f4', 'f5', 'f6']) {
        await importFeed(t.services, [list], { name, trust: 1 });
      }
      const many = await check('45.83.12.40');
      assert.equal(many.feeds.length, 7);
      assert.ok(many.confidenceLevel > alone);
      assert.ok(many.confidenceLevel <= 50);
    });

    it('rescores the addresses with a row inside a CIDR listing when it is added, re-trusted or removed', async () => {
      const reporter = await t.key('tier_1');
      const reported = await t.app.inject({
        method: 'POST',
        url: '/v1/key/report',
        headers: bearer(reporter),
        payload: { ip: '45.83.77.9', category: 'port_scan' },
      });
      assert.equal(reported.statusCode, 200, reported.body);
      const stored = async () =>
        Number(
          (
            await t.store.db
              .selectFrom('reputations')
              .select('score')
              .where('ip', '=', '45.83.77.9')
              .executeTakeFirstOrThrow()
          ).score,
        );
      const alone = await stored();
      assert.equal((await check('45.83.77.9')).confidenceLevel, alone);

      const ranges = file('ranges.txt', '45.83.77.0/24\n45.83.78.0/24\n');
      const added = await importFeed(t.services, [ranges], { name: 'ranges', trust: 0.5 });
      assert.equal(added.rescored, 1, 'the one address with a row inside the ranges');
      const listed = await check('45.83.77.9');
      assert.deepEqual(
        listed.feeds.map((f: { name: string }) => f.name),
        ['ranges'],
      );
      assert.ok(listed.confidenceLevel > alone);
      assert.equal(await stored(), listed.confidenceLevel, 'the stored score is the check score');

      const trusted = await importFeed(t.services, [ranges], { name: 'ranges', trust: 1 });
      assert.equal(trusted.rescored, 1);
      const more = await check('45.83.77.9');
      assert.ok(more.confidenceLevel > listed.confidenceLevel);
      assert.equal(await stored(), more.confidenceLevel);

      const removed = await importFeed(t.services, [file('ranges-empty.txt', '45.83.78.0/24\n')], {
        name: 'ranges',
        trust: 1,
      });
      assert.equal(removed.removed, 1);
      assert.equal(removed.rescored, 1);
      assert.equal(await stored(), alone);
      assert.equal((await check('45.83.77.9')).confidenceLevel, alone);
    });

    it('treats an import as the whole listing: entries gone from the file are removed', async () => {
      const path = file('shrink.txt', '45.83.12.40\n');
      const summary = await importFeed(t.services, [path], { name: 'dshield', trust: 0.3 });
      assert.equal(summary.removed, 2);
      assert.deepEqual(
        (await check('45.83.12.41')).feeds.map((f: { name: string }) => f.name),
        [],
      );
      assert.equal((await check('45.83.12.41')).confidenceLevel, 0);
    });

    it('refuses allowlisted entries and reads gzip files', async () => {
      const gz = file('list.gz', gzipSync('198.51.100.7\n45.90.1.1\n45.90.0.0/16\n45.91.2.3\n'));
      const summary = await importFeed(t.services, [gz], { name: 'gzipped', trust: 0.5 });
      // 198.51.100.7 is a documentation address (non_public) before it is allowlisted.
      assert.deepEqual(summary.rejected, { malformed: 0, non_public: 1, unsupported: 0, allowlisted: 2 });
      assert.equal(summary.entries, 1);
      assert.equal((await check('45.90.1.1')).feeds.length, 0);
      assert.equal((await check('45.91.2.3')).feeds.length, 1);
    });

    it('marks Tor exits as isTor from an imported exit list, without scoring them', async () => {
      const path = sharedDataFile('blocklists', 'tor', 'tor-exit-nodes.lst');
      const list = path ?? file('tor.lst', '185.220.101.1\n');
      if (!path) console.log('# shared Tor exit list absent; using a one-line stand-in');
      const summary = await importFeed(t.services, [list], { name: 'tor-exit', trust: 0, kind: 'tor' });
      assert.ok(summary.entries > 0);
      const exit = path ? '101.99.92.179' : '185.220.101.1';
      const res = await t.app.inject({
        method: 'POST',
        url: '/v1/key/report',
        headers: bearer(key),
        payload: { ip: exit, category: 'brute_force', protocol: 'ssh' },
      });
      assert.equal(res.statusCode, 200, res.body);
      const checked = await check(exit);
      assert.equal(checked.geolocation.isTor, true);
      assert.equal(checked.scoreBreakdown.feed, 0);
      assert.deepEqual(checked.feeds, []);
      assert.equal((await check('45.83.12.40')).geolocation.isTor, false);
    });
  });
}
