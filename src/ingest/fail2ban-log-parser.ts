// Reads fail2ban.log Ban / Restore Ban / Unban lines and maps jails to report categories (SPEC §7, §8).
import type { Category } from '../core/categories.js';
import { isPublicIp, parseIp } from '../core/ip.js';
import { emptyTally, type LineSource, type LineTally, tallyRejected, tallySkipped } from './line-tally.js';

export type Fail2banAction = 'ban' | 'restore_ban' | 'unban';

export interface Fail2banEntry {
  readonly ip: string;
  /** Epoch ms. */
  readonly ts: number;
  readonly jail: string;
  readonly action: Fail2banAction;
  readonly line: number;
}

export interface Fail2banParserOptions {
  /** fail2ban writes local time; its offset from UTC in minutes. Default 0. */
  readonly utcOffsetMinutes?: number;
}

export interface Fail2banParser {
  push(line: string): Fail2banEntry | null;
  readonly tally: LineTally;
}

// "2020-08-16 03:28:37,986 fail2ban.actions [28143]: NOTICE [sshd] Ban 1.2.3.4" (pid optional in old releases).
const LINE =
  /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:,(\d{3}))?\s+fail2ban\.\S+\s*(?:\[\d+\])?:\s+[A-Z]+\s+\[([^\]]+)\]\s+(.*)$/;
const ACTION = /^(Restore Ban|Ban|Unban)\s+(\S+)\s*$/;

export function createFail2banParser(options: Fail2banParserOptions = {}): Fail2banParser {
  const tally = emptyTally();
  const offset = options.utcOffsetMinutes ?? 0;

  function push(rawLine: string): Fail2banEntry | null {
    tally.lines++;
    const lineNumber = tally.lines;
    const match = LINE.exec(rawLine.trim());
    if (!match) {
      tally.ignored++;
      return null;
    }
    const [, y, mo, d, h, mi, s, ms, jail = '', rest = ''] = match;
    const action = ACTION.exec(rest);
    if (!action) {
      // "Found", "already banned", "Jail started" …: fail2ban's own bookkeeping, not bans.
      tally.ignored++;
      return null;
    }
    const parsed = parseIp(action[2] ?? '');
    if (!parsed.ok) {
      tallyRejected(tally, 'invalid_ip', lineNumber);
      return null;
    }
    if (!isPublicIp(parsed.ip)) {
      tallyRejected(tally, 'non_public_ip', lineNumber);
      return null;
    }
    const ts =
      Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), Number(ms ?? 0)) -
      offset * 60_000;
    if (Number.isNaN(ts)) {
      tallyRejected(tally, 'invalid_timestamp', lineNumber);
      return null;
    }
    const verb = action[1];
    const kind: Fail2banAction = verb === 'Ban' ? 'ban' : verb === 'Unban' ? 'unban' : 'restore_ban';
    if (kind === 'unban') tallySkipped(tally, 'unban', lineNumber);
    else tally.accepted++;
    return { ip: parsed.ip.text, ts, jail, action: kind, line: lineNumber };
  }

  return { push, tally };
}

/** Streams entries (bans, restored bans and unbans); callers report `ban` only (SPEC §7). */
export async function* parseFail2banLines(
  lines: LineSource,
  parser: Fail2banParser,
): AsyncGenerator<Fail2banEntry> {
  for await (const line of lines) {
    const entry = parser.push(line);
    if (entry !== null) yield entry;
  }
}

export interface JailCategory {
  readonly category: Category;
  /** Null when the jail does not say which service was attacked. */
  readonly protocol: string | null;
}

// First match wins; names are compared lower-case with any "plesk-" prefix removed.
const JAIL_RULES: ReadonlyArray<readonly [RegExp, Category, string | null]> = [
  [/^recidive$/, 'other', null],
  [/^(sshd|ssh|dropbear|selinux-ssh|sshd-ddos|ssh-.*)$/, 'brute_force', 'ssh'],
  [/^(apache|nginx)-(badbots|fakegooglebot)$|badbot/, 'bad_bot', 'http'],
  [/^nginx-limit-req$|http-get-dos|ddos/, 'ddos', 'http'],
  [
    /modsecurity|^(apache|nginx)-(noscript|overflows|nohome|botsearch|shellshock)$|php-url-fopen|wp-exploit/,
    'web_exploit',
    'http',
  ],
  [
    /wordpress|^wp-|roundcube|horde|joomla|drupal|phpmyadmin|http-auth|^apache-auth$|^apache$|^nginx$|panel/,
    'brute_force',
    'http',
  ],
  [/proftpd|vsftpd|pure-?ftpd|wuftpd|^ftp/, 'brute_force', 'ftp'],
  [/postfix-sasl|sasl|sendmail-auth|exim-auth|smtp-auth/, 'brute_force', 'smtp'],
  [/postfix|sendmail|exim|spam|rbl/, 'spam', 'smtp'],
  [/dovecot|courier|cyrus|imap|pop3/, 'brute_force', 'imap'],
  [/mysql/, 'brute_force', 'mysql'],
  [/postgres/, 'brute_force', 'postgresql'],
  [/mssql/, 'brute_force', 'mssql'],
  [/mongo/, 'brute_force', 'mongodb'],
  [/asterisk|freeswitch|sip/, 'brute_force', 'sip'],
  [/named|bind|dns/, 'dns_abuse', 'dns'],
  [/portsentry|portscan|port-scan/, 'port_scan', null],
];

/** Maps a fail2ban jail name to a report category and protocol; unknown jails are `other`. */
export function categoryForJail(jail: string): JailCategory {
  const raw = jail.trim().toLowerCase();
  // Plesk's postfix jail watches SASL authentication failures, unlike the stock postfix filter.
  if (raw === 'plesk-postfix') return { category: 'brute_force', protocol: 'smtp' };
  const name = raw.replace(/^plesk-/, '');
  for (const [pattern, category, protocol] of JAIL_RULES) {
    if (pattern.test(name)) return { category, protocol };
  }
  return { category: 'other', protocol: null };
}
