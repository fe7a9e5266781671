import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readLines } from '../../test/support/read-lines.js';
import { sharedDataFile } from '../../test/support/shared-data.js';
import {
  categoryForJail,
  createFail2banParser,
  type Fail2banEntry,
  parseFail2banLines,
} from './fail2ban-log-parser.js';
import { rejectedCount, skippedCount } from './line-tally.js';

async function parse(lines: Iterable<string> | AsyncIterable<string>) {
  const parser = createFail2banParser();
  const entries: Fail2banEntry[] = [];
  for await (const entry of parseFail2banLines(lines, parser)) entries.push(entry);
  return { entries, tally: parser.tally };
}

describe('fail2ban log parser', () => {
  it('reads Ban, Restore Ban and Unban lines and ignores the rest', async () => {
    const { entries, tally } = await parse([
      '2020-08-16 03:26:25,835 fail2ban.server         [28143]: INFO    rollover performed on /var/log/fail2ban.log',
      '2020-08-16 03:28:37,986 fail2ban.filter         [28143]: INFO    [plesk-wordpress] Found 35.224.216.78 - 2020-08-16 03:28:36',
      '2020-08-16 04:01:10,677 fail2ban.actions        [28143]: NOTICE  [plesk-wordpress] Ban 212.102.58.113',
      '2020-08-16 05:01:10,001 fail2ban.actions        [28143]: NOTICE  [recidive] Unban 212.102.58.113',
      '2023-01-02 10:00:00,500 fail2ban.actions        [9]: NOTICE  [sshd] Restore Ban 2a05:d014:ff:212::3:1',
      '2016-05-01 10:00:00,000 fail2ban.actions: WARNING [ssh] Ban 45.83.12.40',
      '2020-08-16 04:01:10,677 fail2ban.actions        [28143]: NOTICE  [sshd] Ban 10.0.0.5',
      '2020-08-16 04:01:10,677 fail2ban.actions        [28143]: NOTICE  [sshd] Ban 1..2.3',
      '2020-08-16 04:01:10,677 fail2ban.actions        [28143]: NOTICE  [sshd] 45.83.12.40 already banned',
    ]);
    assert.deepEqual(
      entries.map((e) => [e.action, e.jail, e.ip]),
      [
        ['ban', 'plesk-wordpress', '212.102.58.113'],
        ['unban', 'recidive', '212.102.58.113'],
        ['restore_ban', 'sshd', '2a05:d014:ff:212::3:1'],
        ['ban', 'ssh', '45.83.12.40'],
      ],
    );
    assert.equal(entries[0]?.ts, Date.parse('2020-08-16T04:01:10.677Z'));
    assert.deepEqual(tally.rejected.non_public_ip?.lines, [7]);
    assert.deepEqual(tally.rejected.invalid_ip?.lines, [8]);
    assert.equal(tally.lines, tally.accepted + tally.ignored + skippedCount(tally) + rejectedCount(tally));
  });

  it('maps common jails to categories and protocols', () => {
    const cases: Array<[string, string, string | null]> = [
      ['sshd', 'brute_force', 'ssh'],
      ['plesk-wordpress', 'brute_force', 'http'],
      ['plesk-apache', 'brute_force', 'http'],
      ['apache-badbots', 'bad_bot', 'http'],
      ['plesk-modsecurity', 'web_exploit', 'http'],
      ['nginx-http-auth', 'brute_force', 'http'],
      ['nginx-limit-req', 'ddos', 'http'],
      ['plesk-proftpd', 'brute_force', 'ftp'],
      ['postfix-sasl', 'brute_force', 'smtp'],
      ['plesk-postfix', 'brute_force', 'smtp'],
      ['postfix', 'spam', 'smtp'],
      ['dovecot', 'brute_force', 'imap'],
      ['mysqld-auth', 'brute_force', 'mysql'],
      ['recidive', 'other', null],
      ['asterisk', 'brute_force', 'sip'],
      ['my-custom-jail', 'other', null],
    ];
    for (const [jail, category, protocol] of cases) {
      assert.deepEqual(categoryForJail(jail), { category, protocol }, jail);
    }
  });

  it('reads the Plesk fail2ban.log', async (t) => {
    const path = sharedDataFile('logs', 'plesk-server-2020', 'fail2ban.log');
    if (path === null) return t.skip('shared data not found (logs/plesk-server-2020/fail2ban.log)');
    const { entries, tally } = await parse(readLines(path));
    const count = (action: string) => entries.filter((e) => e.action === action).length;
    assert.equal(count('ban'), 64);
    assert.equal(count('unban'), 75);
    assert.equal(tally.lines, tally.accepted + tally.ignored + skippedCount(tally) + rejectedCount(tally));
  });
});
