// `vakt import` as a process (SPEC §7, §10): gzip input, a JSON summary on stdout, quiet when piped, usage errors.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { runCli } from './helpers/server-process.js';

const dir = mkdtempSync(join(tmpdir(), 'vakt-import-cli-'));
const env = { VAKT_DATABASE_URL: `sqlite:${join(dir, 'vakt.db')}` };

const line = (fields: Record<string, unknown>) =>
  JSON.stringify({
    session: 'c0ffee01',
    sensor: 'hp-test',
    timestamp: '2018-05-06T10:00:00.000000Z',
    src_ip: '45.83.15.9',
    ...fields,
  });
const cowrie = [
  line({ eventid: 'cowrie.session.connect', src_port: 50000, dst_port: 22, protocol: 'ssh' }),
  line({
    eventid: 'cowrie.login.failed',
    username: 'root',
    password: 'x',
    timestamp: '2018-05-06T10:00:01.000000Z',
  }),
  line({ eventid: 'cowrie.client.version', version: 'SSH-2.0-Go', timestamp: '2018-05-06T10:00:01.500000Z' }),
  'not json at all',
  line({ eventid: 'cowrie.session.closed', duration: 2.1, timestamp: '2018-05-06T10:00:02.000000Z' }),
].join('\n');

describe('vakt import (process)', () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('imports a gzip Cowrie log, prints a JSON summary with reasons, and imports nothing the second time', async () => {
    const file = join(dir, 'cowrie.json.2018-05-06.gz');
    writeFileSync(file, gzipSync(cowrie));
    const first = await runCli(['import', 'cowrie', file, '--json'], env);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stderr, '', 'no progress output when not on a TTY');
    const summary = JSON.parse(first.stdout);
    assert.equal(summary.read, 5);
    assert.equal(summary.accepted, 3);
    assert.equal(summary.rejected, 1);
    assert.equal(
      Object.values(summary.rejectedReasons).reduce((a: number, b) => a + Number(b), 0),
      1,
    );
    assert.equal(summary.skippedReasons.client_metadata, 1);
    const second = JSON.parse((await runCli(['import', 'cowrie', file, '--json'], env)).stdout);
    assert.equal(second.accepted, 0);
    assert.equal(second.duplicates, 3);
  });

  it('stores country and ASN on the rows an import creates (blacklist filters read them)', async () => {
    const file = join(dir, 'geo.csv');
    writeFileSync(file, 'IP,Category,Protocol,Comment\n45.83.12.7,brute_force,ssh,x\n');
    const res = await runCli(['import', 'reports-csv', file, '--json'], env);
    assert.equal(res.code, 0, res.stderr);
    const db = new Database(join(dir, 'vakt.db'), { readonly: true });
    try {
      const rows = db
        .prepare(
          "select ip, country_code, asn from reputations where ip in ('45.83.15.9', '45.83.12.7') order by ip",
        )
        .all() as { ip: string; country_code: string | null; asn: string | null }[];
      assert.equal(rows.length, 2, 'the Cowrie address and the CSV address');
      for (const row of rows) {
        assert.match(String(row.country_code), /^[A-Z]{2}$/, `${row.ip} has a country`);
        assert.match(String(row.asn), /^[0-9]+$/, `${row.ip} has an ASN`);
      }
    } finally {
      db.close();
    }
  });

  it('prints a readable summary without --json', async () => {
    const file = join(dir, 'reports.csv');
    writeFileSync(file, 'IP,Category,Protocol,Comment\n45.83.15.10,brute_force,ssh,x\nnope,spam,,\n');
    const res = await runCli(['import', 'reports-csv', file], env);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /reports-csv: 1 file\(s\), 2 read, 1 records, 1 accepted/);
    assert.match(res.stdout, /1 accepted/);
    assert.match(res.stdout, /rejected: invalid_ip: 1/);
  });

  it("says how an auth log's failed logins became reports", async () => {
    const file = join(dir, 'auth.log');
    const failure = (second: number, ip: string) =>
      `May  6 10:00:${String(second).padStart(2, '0')} host sshd[4242]: Failed password for root from ${ip} port 5${second} ssh2`;
    const lines = [
      ...Array.from({ length: 6 }, (_, i) => failure(i, '45.83.15.11')),
      failure(30, '45.83.15.12'),
    ];
    writeFileSync(file, `${lines.join('\n')}\n`);
    const res = await runCli(
      ['import', 'auth-log', '--year', '2026', '--threshold', '5', '--window', '10', file],
      env,
    );
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /auth-log: 1 file\(s\), 7 read, 7 records, 1 accepted/);
    assert.match(
      res.stdout,
      /the 7 failed logins made 1 report\(s\): one per burst of ≥ 5 from an address within 10 minutes/,
    );
  });

  it('explains its usage on a bad kind', async () => {
    const res = await runCli(['import', 'nonsense', 'x'], env);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /usage: vakt import/);
  });
});
