// Bulk reports publish their TAXII versions through the outbox (decision 0852): durable marks, whole batches, idempotent drains.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { OUTBOX_CHUNK } from '../src/services/taxii-outbox.js';
import { countPendingTaxii } from '../src/store/pending-taxii-repository.js';
import { ENGINES, skipReason } from './helpers/engines.js';
import { bearer, createTestApp, type TestApp } from './helpers/test-app.js';

const OBJECTS = '/taxii2/collections/threat-intel/objects/';

for (const engine of ENGINES) {
  describe(`TAXII outbox for bulk reports (${engine})`, { skip: skipReason(engine) }, () => {
    let t: TestApp;
    let key: string;

    before(async () => {
      // Every scored IP enters the feed, so each reported IP gets an indicator.
      t = await createTestApp(engine, { VAKT_TAXII_SCORE_MINIMUM: '1' });
      // The background runner is stopped: each test drains explicitly, so what is pending is known.
      await t.app.ready();
      await t.services.taxiiOutbox.stop();
      key = await t.key('unlimited');
    });
    after(async () => t?.close());

    const ips = (block: number, count: number) =>
      Array.from({ length: count }, (_, i) => `45.${block}.${Math.floor(i / 250)}.${(i % 250) + 1}`);

    const bulk = async (list: string[], by = key) => {
      const res = await t.app.inject({
        method: 'POST',
        url: '/v1/key/bulk-report',
        headers: bearer(by),
        payload: { reports: list.map((ip) => ({ ip, category: 'brute_force', protocol: 'ssh' })) },
      });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json().accepted, list.length, res.body);
      // Applied (and its IPs marked) after the answer on SQLite (decision 0853).
      await t.services.bulkQueue.drain();
    };

    /** Indicator versions of `list`'s IPs in the feed (every version), via the TAXII route. */
    const feedVersions = async (list: string[]) => {
      const wanted = new Set(list);
      const found: { ip: string; confidence: number; modified: string }[] = [];
      let next: string | undefined;
      do {
        const query = `match[type]=indicator&match[version]=all&limit=1000${next ? `&next=${next}` : ''}`;
        const res = await t.app.inject({ method: 'GET', url: `${OBJECTS}?${query}`, headers: bearer(key) });
        assert.equal(res.statusCode, 200, res.body);
        const body = res.json() as {
          more: boolean;
          next?: string;
          objects?: { pattern: string; confidence: number; modified: string }[];
        };
        for (const object of body.objects ?? []) {
          const ip = /'([^']+)'/.exec(object.pattern)?.[1] ?? '';
          if (wanted.has(ip)) found.push({ ip, confidence: object.confidence, modified: object.modified });
        }
        next = body.more ? body.next : undefined;
      } while (next);
      return found;
    };

    const check = async (ip: string) => {
      const res = await t.app.inject({ method: 'GET', url: `/v1/key/check/${ip}`, headers: bearer(key) });
      assert.equal(res.statusCode, 200, res.body);
      return res.json() as { found: boolean; confidenceLevel: number };
    };

    it('publishes a bulk report only at the drain, the whole batch at once; checks see the scores at once', async () => {
      const list = ips(1, 300);
      await bulk(list);
      // Right after the 200: every check is right, the feed has none of the batch, every IP is marked.
      for (const ip of list.slice(0, 20)) assert.ok((await check(ip)).confidenceLevel > 0, ip);
      assert.deepEqual(await feedVersions(list), []);
      assert.equal(await countPendingTaxii(t.store.db), list.length);
      await t.services.taxiiOutbox.drain();
      const versions = await feedVersions(list);
      assert.deepEqual(versions.map((v) => v.ip).sort(), [...list].sort());
      assert.ok(versions.every((v) => v.confidence > 0));
      assert.equal(await countPendingTaxii(t.store.db), 0);
    });

    it('is idempotent: a second drain publishes nothing more', async () => {
      const list = ips(2, 50);
      await bulk(list);
      await t.services.taxiiOutbox.drain();
      const once = await feedVersions(list);
      await t.services.taxiiOutbox.drain();
      assert.deepEqual(await feedVersions(list), once);
      assert.equal(once.length, list.length);
    });

    it('keeps the marks when a drain fails midway, and the next drain publishes the batch', async () => {
      const list = ips(3, 120);
      await bulk(list);
      const taxii = t.services.taxii;
      const original = taxii.publishMany.bind(taxii);
      // Every version is inserted by then; the failure must roll all of them back and keep the marks.
      taxii.publishMany = async (...args: Parameters<typeof taxii.publishMany>) => {
        await original(...args);
        throw new Error('simulated crash');
      };
      try {
        await assert.rejects(t.services.taxiiOutbox.drain(), /simulated crash/);
      } finally {
        taxii.publishMany = original;
      }
      assert.deepEqual(await feedVersions(list), []);
      assert.equal(await countPendingTaxii(t.store.db), list.length);
      await t.services.taxiiOutbox.drain();
      const versions = await feedVersions(list);
      assert.deepEqual(versions.map((v) => v.ip).sort(), [...list].sort());
      assert.equal(await countPendingTaxii(t.store.db), 0);
    });

    it('adds no duplicate version for an IP a single report published before the drain', async () => {
      const [ip] = ips(4, 1);
      assert.ok(ip);
      await bulk([ip]);
      // A single report from another key rescores and publishes in its own transaction (SPEC §4).
      const other = await t.key('unlimited');
      const res = await t.app.inject({
        method: 'POST',
        url: '/v1/key/report',
        headers: bearer(other),
        payload: { ip, category: 'port_scan' },
      });
      assert.equal(res.statusCode, 200, res.body);
      const before = await feedVersions([ip]);
      assert.equal(before.length, 1);
      await t.services.taxiiOutbox.drain();
      assert.deepEqual(await feedVersions([ip]), before);
      assert.equal(before[0]?.confidence, (await check(ip)).confidenceLevel);
    });

    it('serves checks and takes new bulk reports while a drain runs; the feed catches up with both', async () => {
      const first = ips(5, 400);
      const second = ips(6, 400);
      await bulk(first);
      const [, , scored] = await Promise.all([
        t.services.taxiiOutbox.drain(),
        bulk(second),
        check(first[7] ?? ''),
      ]);
      assert.ok(scored.confidenceLevel > 0);
      for (const ip of second.slice(0, 10)) assert.ok((await check(ip)).confidenceLevel > 0, ip);
      await t.services.taxiiOutbox.drain();
      const versions = await feedVersions([...first, ...second]);
      assert.deepEqual(versions.map((v) => v.ip).sort(), [...first, ...second].sort());
      assert.equal(await countPendingTaxii(t.store.db), 0);
    });

    it('dates each version at its report, and gives an IP two reports marked one version', async () => {
      const early = ips(8, 30);
      const late = ips(9, 30);
      const shared = early[0] ?? '';
      const earlyAt = t.clock.now();
      await bulk(early);
      t.clock.advance(60_000);
      const lateAt = t.clock.now();
      // Another key, so the shared IP's second report is not merged (SPEC §3.3) and its score moves.
      await bulk([shared, ...late], await t.key('unlimited'));
      await t.services.taxiiOutbox.drain();
      const versions = await feedVersions([...early, ...late]);
      assert.equal(versions.length, early.length + late.length);
      const modified = new Map(versions.map((v) => [v.ip, Date.parse(v.modified)]));
      for (const ip of early.slice(1)) assert.equal(modified.get(ip), earlyAt, ip);
      for (const ip of [shared, ...late]) assert.equal(modified.get(ip), lateAt, ip);
      assert.equal(versions.find((v) => v.ip === shared)?.confidence, (await check(shared)).confidenceLevel);
    });

    it('publishes a large backlog in chunks of the oldest marks, letting other requests run in between', async () => {
      assert.equal(OUTBOX_CHUNK, 500, 'the splits expected below assume chunks of 500 marks');
      const early = ips(10, 1_250);
      const late = ips(11, 1_000);
      const earlyAt = t.clock.now();
      await bulk(early);
      t.clock.advance(60_000);
      await bulk(late, await t.key('unlimited'));
      const taxii = t.services.taxii;
      const original = taxii.publishMany.bind(taxii);
      const published: number[] = [];
      taxii.publishMany = async (...args: Parameters<typeof taxii.publishMany>) => {
        published.push(args[1].length);
        return original(...args);
      };
      try {
        let done = false;
        const draining = t.services.taxiiOutbox.drain().then(() => {
          done = true;
        });
        // SQLite work is synchronous: without a turn of the event loop between chunks the whole backlog
        // held every other request.
        const ranDuring = new Promise<boolean>((resolve) => setImmediate(() => resolve(!done)));
        await draining;
        assert.equal(await ranDuring, true);
      } finally {
        taxii.publishMany = original;
      }
      // Oldest first, one publishMany per report time within a chunk: 500 + 500 early, then the early
      // batch's last 250 with the late one's first 250, then 500 and 250 late.
      assert.deepEqual(published, [500, 500, 250, 250, 500, 250]);
      assert.equal(await countPendingTaxii(t.store.db), 0);
      const versions = await feedVersions([...early, ...late]);
      assert.equal(versions.length, early.length + late.length);
      assert.ok(versions.filter((v) => Date.parse(v.modified) === earlyAt).length === early.length);
    });

    it('publishes pending marks when the runner starts (marks left by a stopped process)', async () => {
      const list = ips(7, 40);
      await bulk(list);
      assert.equal(await countPendingTaxii(t.store.db), list.length);
      t.services.taxiiOutbox.start({ intervalMs: 60_000 });
      try {
        const deadline = Date.now() + 10_000;
        while ((await countPendingTaxii(t.store.db)) > 0 && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        await t.services.taxiiOutbox.drain();
      } finally {
        await t.services.taxiiOutbox.stop();
      }
      assert.equal((await feedVersions(list)).length, list.length);
    });
  });
}
