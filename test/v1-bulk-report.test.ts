// Bulk report and bulk check routes on every engine: SPEC §3.4, §3.5 and case 005.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PENDING_CHUNK_ROWS } from '../src/services/bulk-report-queue.js';
import { countPendingReports } from '../src/store/pending-reports-repository.js';
import { countPendingTaxii } from '../src/store/pending-taxii-repository.js';
import { ENGINES, skipReason } from './helpers/engines.js';
import { bearer, createTestApp, type TestApp } from './helpers/test-app.js';

const CASE_005 = [
  'IP,Categories,ReportDate,Comment',
  '45.83.12.20,"18,22",2024-12-18T10:00:37-04:00,"Failed password for invalid user x port 39121 ssh2"',
  '45.83.12.21,"14,15,18",2024-12-18T16:10:58+04:00,"two lines',
  'and a comma, inside"',
  '45.83.12.22,18,2024-12-18T16:11:00Z,"he said \\"hi\\" and ""bye"""',
  '1..218.28,18,2024-12-18T16:11:00Z,bad row',
  '',
].join('\n');

/** A multipart/form-data body with one file part. */
function multipart(field: string, filename: string, content: string | Buffer) {
  const boundary = '----vakt-test-boundary-7MA4YWxkTrZu0gW';
  const payload = Buffer.concat([
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="${field}"; filename="${filename}"\r\nContent-Type: text/csv\r\n\r\n`,
    ),
    Buffer.isBuffer(content) ? content : Buffer.from(content),
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  return { payload, contentType: `multipart/form-data; boundary=${boundary}` };
}

/** n distinct public IPv4 addresses in 45.0.0.0/8 starting at an offset. */
function ips(n: number, offset = 0): string[] {
  return Array.from({ length: n }, (_, i) => {
    const v = i + offset;
    return `45.${(v >> 16) & 255}.${(v >> 8) & 255}.${v & 255}`;
  });
}

for (const engine of ENGINES) {
  describe(`bulk report (${engine})`, { skip: skipReason(engine) }, () => {
    let t: TestApp;
    let key: string;

    before(async () => {
      t = await createTestApp(engine);
      key = await t.key('unlimited');
    });
    after(async () => t?.close());

    const bulk = (payload: string | Buffer | object, contentType: string, withKey = key) =>
      t.app.inject({
        method: 'POST',
        url: '/v1/key/bulk-report',
        headers: { ...bearer(withKey), 'content-type': contentType },
        payload: payload as string,
      });
    // Accepted rows are applied after the answer (decision 0853): what is stored is read once applied.
    const commentsOf = async (ip: string) => {
      await t.services.bulkQueue.drain();
      const rows = await t.store.db.selectFrom('reports').select('comment').where('ip', '=', ip).execute();
      return rows.map((r) => r.comment);
    };
    const reportCount = async () => {
      await t.services.bulkQueue.drain();
      const row = await t.store.db
        .selectFrom('reports')
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirstOrThrow();
      return Number(row.n);
    };

    it('stores an AbuseIPDB export with byte-identical comments and reports the bad row (case 005)', async () => {
      const res = await bulk(CASE_005, 'text/csv');
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json();
      assert.equal(body.total, 4);
      assert.equal(body.accepted, 3);
      assert.equal(body.rejected, 1);
      assert.equal(body.errors.length, 1);
      assert.equal(body.errors[0].row, 4);
      assert.equal(body.errors[0].code, 'invalid_ip');
      assert.deepEqual(await commentsOf('45.83.12.21'), ['two lines\nand a comma, inside']);
      assert.deepEqual(await commentsOf('45.83.12.22'), ['he said "hi" and "bye"']);
      const stored = await t.store.db
        .selectFrom('reports')
        .select(['category', 'categories'])
        .where('ip', '=', '45.83.12.20')
        .executeTakeFirstOrThrow();
      assert.equal(stored.category, 'brute_force');
    });

    it('reads a multipart file (field "file" or "csv"), semicolons, CRLF inside quotes, a BOM', async () => {
      const csv =
        '\uFEFFIP;Category;Protocol;Comment\r\n46.1.1.1;brute_force;ssh;"a; b, c\r\nd \\"q\\" ""r"""\r\n46.1.1.2;nope;ssh;x\r\n46.1.1.3;2;;\r\n';
      for (const field of ['file', 'csv']) {
        const form = multipart(field, 'reports.csv', csv);
        const res = await bulk(form.payload, form.contentType);
        assert.equal(res.statusCode, 200, res.body);
        const body = res.json();
        assert.equal(body.total, 3);
        assert.equal(body.rejected, 1);
        assert.deepEqual(
          body.errors.map((e: { row: number; code: string }) => [e.row, e.code]),
          [[2, 'invalid_parameter']],
        );
      }
      // The second upload merged into the first (same key, IP, category within 15 minutes).
      assert.deepEqual(await commentsOf('46.1.1.1'), ['a; b, c\r\nd "q" "r"']);
    });

    it('accepts positional CSV without a header, and JSON', async () => {
      const res = await bulk('47.1.1.1,port_scan,,scan\n47.1.1.2,4,http,"x,y"\n', 'text/csv');
      assert.equal(res.json().accepted, 2, res.body);
      const json = await bulk(
        {
          reports: [
            { ip: '47.1.2.1', category: 'ddos' },
            { ip: '10.0.0.1', category: 'ddos' },
            { ip: '47.1.2.2' },
          ],
        },
        'application/json',
      );
      const body = json.json();
      assert.equal(body.accepted, 1);
      assert.deepEqual(
        body.errors.map((e: { row: number; code: string }) => [e.row, e.code]),
        [
          [2, 'ip_not_public'],
          [3, 'invalid_parameter'],
        ],
      );
    });

    it('accepts exactly 9,997 of 10,000 rows with 3 bad ones, in one request', async () => {
      const rows = ips(10_000, 100_000).map((ip) => `${ip},brute_force,ssh,bulk`);
      rows[10] = 'not-an-ip,brute_force,ssh,x';
      rows[5000] = '48.0.0.1,not_a_category,ssh,x';
      rows[9999] = '127.0.0.1,brute_force,ssh,x';
      const before = await reportCount();
      const res = await bulk(`${rows.join('\n')}\n`, 'text/csv');
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json();
      assert.equal(body.total, 10_000);
      assert.equal(body.accepted, 9_997);
      assert.deepEqual(
        body.errors.map((e: { row: number; code: string }) => [e.row, e.code]),
        [
          [11, 'invalid_ip'],
          [5001, 'invalid_parameter'],
          [10_000, 'ip_not_public'],
        ],
      );
      assert.equal((await reportCount()) - before, 9_997);
    });

    it('refuses 10,001 rows (CSV and JSON) and over 2 MB with 413, storing nothing', async () => {
      const before = await reportCount();
      const rows = ips(10_001, 300_000).map((ip) => `${ip},brute_force`);
      const csv = await bulk(`${rows.join('\n')}\n`, 'text/csv');
      assert.equal(csv.statusCode, 413, csv.body);
      assert.equal(csv.json().code, 'too_many_rows');
      const form = multipart('file', 'big.csv', `${rows.join('\n')}\n`);
      assert.equal((await bulk(form.payload, form.contentType)).statusCode, 413);
      const json = await bulk(
        { reports: ips(10_001, 300_000).map((ip) => ({ ip, category: 1 })) },
        'application/json',
      );
      assert.equal(json.statusCode, 413);
      const huge = `${'49.1.1.1,brute_force,ssh,'.padEnd(1000, 'x')}\n`.repeat(2200);
      const big = await bulk(huge, 'text/csv');
      assert.equal(big.statusCode, 413);
      assert.equal(big.json().code, 'payload_too_large');
      const bigForm = multipart('file', 'big.csv', huge);
      assert.equal((await bulk(bigForm.payload, bigForm.contentType)).statusCode, 413);
      assert.equal(await reportCount(), before);
    });

    it('stores all rows or none when the request fails midway', async () => {
      await t.services.taxiiOutbox.drain();
      const before = await reportCount();
      const service = t.services.reports;
      const queue = t.services.bulkQueue;
      const original = service.applyMany.bind(service);
      const originalScored = service.applyAndScoreMany.bind(service);
      const originalAccepted = queue.accepted.bind(queue);
      // Every row is written by then (SQLite stores them as pending rows before queue.accepted, decision
      // 0853; PostgreSQL writes rows and scores in applyMany); the crash must roll all of them back, TAXII
      // outbox marks included.
      service.applyMany = async (...args: Parameters<typeof service.applyMany>) => {
        await original(...args);
        throw new Error('simulated crash');
      };
      service.applyAndScoreMany = async (...args: Parameters<typeof service.applyAndScoreMany>) => {
        await originalScored(...args);
        throw new Error('simulated crash');
      };
      queue.accepted = (ips: Iterable<string>) => {
        originalAccepted(ips);
        throw new Error('simulated crash');
      };
      try {
        const rows = ips(1000, 400_000).map((ip) => `${ip},brute_force`);
        const res = await bulk(`${rows.join('\n')}\n`, 'text/csv');
        assert.equal(res.statusCode, 500);
      } finally {
        service.applyMany = original;
        service.applyAndScoreMany = originalScored;
        queue.accepted = originalAccepted;
      }
      assert.equal(await countPendingReports(t.store.db), 0);
      assert.equal(await reportCount(), before);
      assert.equal(await countPendingTaxii(t.store.db), 0);
      const leftover = await t.store.db
        .selectFrom('reputations')
        .select('ip')
        .where('ip', '=', ips(1, 400_000)[0] ?? '')
        .execute();
      assert.equal(leftover.length, 0);
    });

    it('keeps every accepted row when applying them fails, and applies them all on the next drain', {
      skip: engine === 'sqlite' ? false : 'bulk rows are applied inside the request on PostgreSQL',
    }, async () => {
      const before = await reportCount();
      const queue = t.services.bulkQueue;
      await queue.stop(); // no background drain between the answer and the failing one below
      const scorer = t.services.scorer;
      const settle = scorer.settleMany.bind(scorer);
      try {
        const rows = ips(2000, 500_000).map((ip) => `${ip},brute_force`);
        const res = await bulk(`${rows.join('\n')}\n`, 'text/csv');
        assert.equal(res.statusCode, 200, res.body);
        assert.equal(res.json().accepted, 2000);
        assert.equal(await countPendingReports(t.store.db), 2000);
        // Fails at the end of applying (after every row was written in the drain's transaction).
        scorer.settleMany = async () => {
          throw new Error('simulated crash');
        };
        await assert.rejects(queue.drain(), /simulated crash/);
        scorer.settleMany = settle;
        assert.equal(await countPendingReports(t.store.db), 2000);
        const applied = await t.store.db
          .selectFrom('reports')
          .select((eb) => eb.fn.countAll().as('n'))
          .executeTakeFirstOrThrow();
        assert.equal(Number(applied.n), before);
        // A check of one of them still waits for (and gets) the rows.
        const check = await t.app.inject({
          method: 'GET',
          url: `/v1/key/check/${ips(1, 500_000)[0]}`,
          headers: bearer(key),
        });
        assert.equal(check.statusCode, 200);
        assert.equal(check.json().contributor.reportCount, 1, check.body);
        assert.equal(await countPendingReports(t.store.db), 0);
        assert.equal(await reportCount(), before + 2000);
      } finally {
        scorer.settleMany = settle;
        queue.start();
      }
    });

    it('applies a 10,000-row request in transactions of PENDING_CHUNK_ROWS, other requests running in between', {
      skip: engine === 'sqlite' ? false : 'bulk rows are applied inside the request on PostgreSQL',
    }, async () => {
      const queue = t.services.bulkQueue;
      await queue.stop();
      const store = t.store;
      const original = store.transactionWithoutCheckpoint.bind(store);
      let transactions = 0;
      let largest = 0;
      try {
        const rows = ips(10_000, 700_000).map((ip) => `${ip},port_scan`);
        const res = await bulk(`${rows.join('\n')}\n`, 'text/csv');
        assert.equal(res.json().accepted, 10_000, res.body);
        store.transactionWithoutCheckpoint = (async (work: Parameters<typeof original>[0]) => {
          const pendingBefore = await countPendingReports(store.db);
          const result = await original(work);
          const pendingAfter = await countPendingReports(store.db);
          transactions++;
          largest = Math.max(largest, pendingBefore - pendingAfter);
          return result;
        }) as typeof store.transactionWithoutCheckpoint;
        await queue.drain();
        assert.equal(await countPendingReports(store.db), 0);
        assert.ok(PENDING_CHUNK_ROWS < 10_000);
        assert.equal(largest, PENDING_CHUNK_ROWS, 'at most PENDING_CHUNK_ROWS rows applied per transaction');
        assert.ok(transactions >= 10_000 / PENDING_CHUNK_ROWS, `${transactions} transactions`);
      } finally {
        store.transactionWithoutCheckpoint = original;
        queue.start();
      }
    });

    it('answers reads with the rows it acknowledged before they are applied (decision 0853)', async () => {
      const queue = t.services.bulkQueue;
      await queue.stop(); // nothing applies the rows in the background: the reads below must
      try {
        const reporter = await t.key('unlimited');
        const list = ips(3, 600_000);
        const rows = list.map((ip) => `${ip},brute_force,ssh,first`);
        const first = await bulk(`${rows.join('\n')}\n`, 'text/csv', reporter);
        assert.equal(first.json().accepted, 3, first.body);
        // The same key and category again, still pending: merged (SPEC §3.3), not stored twice.
        const again = await bulk(`${rows.join('\n')}\n`, 'text/csv', reporter);
        assert.equal(again.json().accepted, 3, again.body);
        assert.equal(again.json().duplicates, 3, again.body);
        const single = await t.app.inject({
          method: 'POST',
          url: '/v1/key/report',
          headers: bearer(reporter),
          payload: { ip: list[0], category: 'brute_force' },
        });
        assert.equal(single.json().duplicate, true, single.body);
        // A check of a pending IP waits for its rows (and applies them).
        const [a, b, c] = list as [string, string, string];
        await bulk(`${c},port_scan\n`, 'text/csv', await t.key('unlimited'));
        const check = await t.app.inject({ method: 'GET', url: `/v1/key/check/${c}`, headers: bearer(key) });
        assert.equal(check.json().contributor.reportCount, 2, check.body);
        assert.ok(check.json().confidenceLevel > 0, check.body);
        // Bulk check and blacklist likewise.
        await bulk(`${a},ddos\n${b},ddos\n`, 'text/csv', await t.key('unlimited'));
        // SQLite keeps them pending until something applies them; PostgreSQL applies them in the request.
        assert.equal((await countPendingReports(t.store.db)) > 0, engine === 'sqlite');
        const checked = await t.app.inject({
          method: 'POST',
          url: '/v1/key/bulk-check-inline',
          headers: { ...bearer(key), 'content-type': 'text/plain' },
          payload: `${a}\n${b}\n`,
        });
        assert.equal(checked.json().found, 2, checked.body);
        assert.equal(await countPendingReports(t.store.db), 0);
        assert.equal(
          (await bulk(`${b},web_exploit\n`, 'text/csv', await t.key('unlimited'))).json().accepted,
          1,
        );
        const listed = await t.app.inject({
          method: 'GET',
          url: '/v1/key/blacklist?plaintext=true&scoreMinimum=1&limit=100000',
          headers: bearer(key),
        });
        assert.equal(await countPendingReports(t.store.db), 0);
        const fromCheck = await t.app.inject({
          method: 'GET',
          url: `/v1/key/check/${b}`,
          headers: bearer(key),
        });
        assert.equal(fromCheck.json().contributor.reportCount, 3, fromCheck.body);
        assert.ok(listed.body.split('\n').includes(b), 'listed');
      } finally {
        queue.start();
      }
    });

    it('rejects rows past the day remainder per row with quota_exceeded, charging only what it stores', async () => {
      const free = await t.key('free');
      const rows = ips(1200, 500_000).map((ip) => `${ip},brute_force`);
      const res = await bulk(`${rows.join('\n')}\n`, 'text/csv', free);
      const body = res.json();
      assert.equal(body.accepted, 1000, res.body);
      assert.equal(body.rejected, 200);
      assert.ok(body.errors.every((e: { code: string }) => e.code === 'quota_exceeded'));
      assert.equal(body.errors[0].row, 1001);
      assert.equal(res.headers['x-report-remaining'], '0');
    });

    it('answers 400 for an empty body and 415 for other media types', async () => {
      assert.equal((await bulk('IP,Category\n', 'text/csv')).statusCode, 400);
      assert.equal((await bulk('<x/>', 'application/xml')).statusCode, 415);
    });

    it('bulk-check-inline answers per IP and charges one lookup each', async () => {
      const k = await t.key('free');
      const res = await t.app.inject({
        method: 'POST',
        url: '/v1/key/bulk-check-inline',
        headers: { ...bearer(k), 'content-type': 'text/plain' },
        payload: '45.83.12.20\n203.0.113.9\n\n::ffff:45.83.12.22\n',
      });
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json();
      assert.equal(body.queried, 3);
      assert.equal(body.found, 2);
      assert.equal(body.results[2].ip, '45.83.12.22');
      assert.equal(typeof body.results[0].lastSeen, 'number');
      assert.equal(body.results[1].found, false);
      assert.equal(res.headers['x-daily-used'], '3');
      const bad = await t.app.inject({
        method: 'POST',
        url: '/v1/key/bulk-check-inline',
        headers: { ...bearer(k), 'content-type': 'text/plain' },
        payload: '45.83.12.20\nnope\n',
      });
      assert.equal(bad.statusCode, 400);
    });
  });
}
