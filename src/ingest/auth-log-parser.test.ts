import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readLines } from '../../test/support/read-lines.js';
import { sharedDataFile } from '../../test/support/shared-data.js';
import { createAuthLogParser, detectBursts, type FailedLogin, parseAuthLogLines } from './auth-log-parser.js';
import { rejectedCount, skippedCount } from './line-tally.js';

// Lines from loghub's OpenSSH sample (LabSZ, Dec 10), one Linux_2k line, and hand-made edge cases.
const SAMPLE = [
  'Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186',
  'Dec 10 06:55:46 LabSZ sshd[24200]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=173.234.31.186 ',
  'Dec 10 06:55:48 LabSZ sshd[24200]: Failed password for invalid user webmaster from 173.234.31.186 port 38926 ssh2',
  'Dec 10 07:13:43 LabSZ sshd[24227]: Failed password for root from 5.36.59.76 port 42393 ssh2',
  'Dec 10 07:13:56 LabSZ sshd[24227]: message repeated 5 times: [ Failed password for root from 5.36.59.76 port 42393 ssh2]',
  'Dec 10 08:24:40 LabSZ sshd[24363]: Failed none for invalid user 0 from 5.188.10.180 port 49811 ssh2',
  'Dec 10 09:32:20 LabSZ sshd[24680]: Accepted password for fztu from 119.137.62.142 port 49116 ssh2',
  'Jun 15 02:04:59 combo sshd(pam_unix)[20882]: authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=220.135.151.1  user=root',
  'Jun 15 02:05:00 combo sshd(pam_unix)[20883]: authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=220-135-151-1.hinet-ip.hinet.net  user=root',
  'Dec 10 10:00:00 host sshd[1]: Failed password for root from 192.168.1.20 port 22 ssh2',
  'Dec 10 10:00:01 host sshd[1]: Failed password for root from 999.1.1.1 port 22 ssh2',
  'Dec 10 10:00:02 host CRON[5]: pam_unix(cron:session): session opened for user root',
  '2024-01-05T10:00:00.123456+01:00 host sshd[7]: Failed keyboard-interactive/pam for admin from 2a05:d014:ff:212::3:1 port 5 ssh2',
  'garbage',
];

async function parse(lines: Iterable<string> | AsyncIterable<string>, year: number) {
  const parser = createAuthLogParser({ year });
  const records: FailedLogin[] = [];
  for await (const record of parseAuthLogLines(lines, parser)) records.push(record);
  return { records, tally: parser.tally };
}

describe('auth-log parser', () => {
  it('turns sshd failure lines into records and counts every other relevant line by reason', async () => {
    const { records, tally } = await parse(SAMPLE, 2015);
    assert.deepEqual(
      records.map((r) => [r.ip, r.username, r.line]),
      [
        ['173.234.31.186', 'webmaster', 3],
        ['5.36.59.76', 'root', 4],
        ...Array.from({ length: 5 }, () => ['5.36.59.76', 'root', 5]),
        ['220.135.151.1', 'root', 8],
        ['2a05:d014:ff:212::3:1', 'admin', 13],
      ],
    );
    assert.equal(records[0]?.ts, Date.UTC(2015, 11, 10, 6, 55, 48));
    assert.equal(records[8]?.ts, Date.parse('2024-01-05T09:00:00.123Z'));
    assert.deepEqual(tally.skipped.pam_line_duplicates_sshd_line?.lines, [2]);
    assert.deepEqual(tally.rejected.remote_host_is_a_name?.lines, [9]);
    assert.deepEqual(tally.rejected.non_public_ip?.lines, [10]);
    assert.deepEqual(tally.rejected.invalid_ip?.lines, [11]);
    assert.equal(tally.lines, tally.accepted + tally.ignored + skippedCount(tally) + rejectedCount(tally));
  });

  it('moves to the next year when a log crosses New Year', async () => {
    const { records } = await parse(
      [
        'Dec 31 23:59:59 h sshd[1]: Failed password for root from 45.83.12.40 port 1 ssh2',
        'Jan  1 00:00:01 h sshd[1]: Failed password for root from 45.83.12.40 port 1 ssh2',
      ],
      2019,
    );
    assert.deepEqual(
      records.map((r) => new Date(r.ts).toISOString()),
      ['2019-12-31T23:59:59.000Z', '2020-01-01T00:00:01.000Z'],
    );
  });

  it('reports a burst once it reaches the threshold inside the window', () => {
    const at = (ip: string, seconds: number, username = 'root'): FailedLogin => ({
      ip,
      ts: seconds * 1000,
      username,
      line: 0,
    });
    const records = [
      ...[0, 10, 20, 30, 40].map((s) => at('45.83.12.40', s)),
      ...[0, 100, 200, 300, 400].map((s) => at('45.83.12.41', s)),
      at('45.83.12.40', 5000, 'admin'),
    ];
    const bursts = detectBursts(records, { threshold: 5, windowMs: 60_000 });
    assert.equal(bursts.length, 1);
    assert.deepEqual(
      {
        ip: bursts[0]?.ip,
        failures: bursts[0]?.failures,
        category: bursts[0]?.category,
        protocol: bursts[0]?.protocol,
      },
      { ip: '45.83.12.40', failures: 5, category: 'brute_force', protocol: 'ssh' },
    );
    assert.deepEqual(
      detectBursts(records, { threshold: 5, windowMs: 600_000 })
        .map((b) => b.ip)
        .sort(),
      ['45.83.12.40', '45.83.12.41'],
    );
  });

  for (const [name, parts, year] of [
    ['loghub OpenSSH sample', ['logs', 'loghub', 'OpenSSH_OpenSSH_2k.log'], 2015],
    ['loghub Linux syslog sample', ['logs', 'loghub', 'Linux_Linux_2k.log'], 2005],
    ['Plesk /var/log/secure', ['logs', 'plesk-server-2020', 'secure'], 2020],
  ] as const) {
    it(`reads the ${name} and accounts for every line`, async (t) => {
      const path = sharedDataFile(...parts);
      if (path === null) return t.skip(`shared data not found (${parts.join('/')})`);
      const { records, tally } = await parse(readLines(path), year);
      assert.equal(tally.lines, tally.accepted + tally.ignored + skippedCount(tally) + rejectedCount(tally));
      if (name.startsWith('loghub OpenSSH')) {
        assert.ok(records.length >= 518, `got ${records.length}`);
        assert.ok(detectBursts(records, { threshold: 5, windowMs: 10 * 60_000 }).length > 0);
      }
    });
  }
});
