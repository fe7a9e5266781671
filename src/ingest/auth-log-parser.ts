// Reads sshd/PAM syslog lines into failed-login records and groups them into brute-force report candidates (SPEC §7).
import { isPublicIp, parseIp } from '../core/ip.js';
import { emptyTally, type LineSource, type LineTally, tallyRejected, tallySkipped } from './line-tally.js';

export interface FailedLogin {
  /** Canonical public address. */
  readonly ip: string;
  /** Epoch ms. */
  readonly ts: number;
  /** Null when the line does not name the account (PAM lines without `user=`). */
  readonly username: string | null;
  readonly line: number;
}

export interface AuthLogParserOptions {
  /** Classic syslog stamps have no year; this is the year of the first line. */
  readonly year: number;
  /** The log's local-time offset from UTC in minutes (syslog stamps are local time). Default 0. */
  readonly utcOffsetMinutes?: number;
}

export interface AuthLogParser {
  /** Parses one line; returns its failed logins (several for "message repeated N times"). */
  push(line: string): FailedLogin[];
  readonly tally: LineTally;
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
// "Dec 10 06:55:48 host prog[pid]: message" or an RFC 3339 stamp (rsyslog's high-precision format).
const CLASSIC = /^([A-Z][a-z]{2})\s+(\d{1,2})\s+(\d{2}):(\d{2}):(\d{2})\s+\S+\s+([^:\s]+):\s?(.*)$/;
const RFC3339 =
  /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2}))\s+\S+\s+([^:\s]+):\s?(.*)$/;
const FAILED =
  /^Failed (password|keyboard-interactive\/pam) for (?:invalid user )?(.*?) from (\S+) port \d+(?: ssh2)?/;
const REPEATED = /^message repeated (\d+) times: \[\s*(.*)\]$/;
const PAM_FAILURE = /authentication failure;.*\brhost=(\S*)(?:\s+user=(\S+))?/;

function parseStamp(
  line: string,
  state: { year: number; lastMonth: number },
  offsetMinutes: number,
): { ts: number; program: string; message: string } | null {
  const rfc = RFC3339.exec(line);
  if (rfc) {
    const ts = Date.parse(rfc[1] ?? '');
    return Number.isNaN(ts) ? null : { ts, program: rfc[2] ?? '', message: rfc[3] ?? '' };
  }
  const classic = CLASSIC.exec(line);
  if (!classic) return null;
  const month = MONTHS.indexOf((classic[1] ?? '').toLowerCase());
  if (month < 0) return null;
  // A log that runs from December into January crosses a year.
  if (state.lastMonth >= 0 && month < state.lastMonth - 6) state.year++;
  state.lastMonth = month;
  const ts = Date.UTC(
    state.year,
    month,
    Number(classic[2]),
    Number(classic[3]),
    Number(classic[4]),
    Number(classic[5]),
  );
  return { ts: ts - offsetMinutes * 60_000, program: classic[6] ?? '', message: classic[7] ?? '' };
}

export function createAuthLogParser(options: AuthLogParserOptions): AuthLogParser {
  const tally = emptyTally();
  const state = { year: options.year, lastMonth: -1 };
  const offset = options.utcOffsetMinutes ?? 0;

  function address(text: string, lineNumber: number): string | null {
    const parsed = parseIp(text);
    if (!parsed.ok) {
      tallyRejected(tally, 'invalid_ip', lineNumber);
      return null;
    }
    if (!isPublicIp(parsed.ip)) {
      tallyRejected(tally, 'non_public_ip', lineNumber);
      return null;
    }
    return parsed.ip.text;
  }

  function push(rawLine: string): FailedLogin[] {
    tally.lines++;
    const lineNumber = tally.lines;
    const line = rawLine.trim();
    const stamped = line === '' ? null : parseStamp(line, state, offset);
    if (stamped === null || !/^sshd\b/.test(stamped.program)) {
      tally.ignored++;
      return [];
    }
    let message = stamped.message;
    let times = 1;
    const repeated = REPEATED.exec(message);
    if (repeated) {
      times = Number(repeated[1]);
      message = repeated[2] ?? '';
    }
    const failed = FAILED.exec(message);
    if (failed) {
      const ip = address(failed[3] ?? '', lineNumber);
      if (ip === null) return [];
      tally.accepted++;
      const record = { ip, ts: stamped.ts, username: failed[2] ?? null, line: lineNumber };
      return Array.from({ length: times }, () => record);
    }
    const pam = PAM_FAILURE.exec(message);
    if (pam) {
      // Modern sshd logs "Failed password" right after its own PAM line: count that one only.
      // The old "sshd(pam_unix)[pid]" programme name logs PAM alone, so its lines are the evidence.
      if (!stamped.program.startsWith('sshd(pam_unix)')) {
        tallySkipped(tally, 'pam_line_duplicates_sshd_line', lineNumber);
        return [];
      }
      const rhost = pam[1] ?? '';
      if (rhost === '') {
        tallyRejected(tally, 'no_remote_host', lineNumber);
        return [];
      }
      if (!parseIp(rhost).ok && /[a-z]/i.test(rhost) && !rhost.includes(':')) {
        tallyRejected(tally, 'remote_host_is_a_name', lineNumber);
        return [];
      }
      const ip = address(rhost, lineNumber);
      if (ip === null) return [];
      tally.accepted++;
      return [{ ip, ts: stamped.ts, username: pam[2] ?? null, line: lineNumber }];
    }
    tally.ignored++;
    return [];
  }

  return { push, tally };
}

/** Streams failed logins from syslog lines; the parser's tally is complete once iteration ends. */
export async function* parseAuthLogLines(
  lines: LineSource,
  parser: AuthLogParser,
): AsyncGenerator<FailedLogin> {
  for await (const line of lines) yield* parser.push(line);
}

export interface BurstOptions {
  /** Failures within one window needed to call it a brute force. */
  readonly threshold: number;
  readonly windowMs: number;
}

/** A brute-force report candidate: one per burst per address (SPEC §7: → `brute_force`/`ssh`). */
export interface BurstCandidate {
  readonly ip: string;
  readonly category: 'brute_force';
  readonly protocol: 'ssh';
  readonly failures: number;
  readonly firstTs: number;
  readonly lastTs: number;
  /** Distinct usernames tried, at most 10, in first-seen order. */
  readonly usernames: string[];
  readonly comment: string;
}

/**
 * Groups each address's failures into bursts — runs where consecutive failures are at most `windowMs`
 * apart — and reports a burst when some `windowMs` span inside it holds at least `threshold` failures.
 * Output is sorted by first failure, then address; the same input always gives the same output.
 */
export function detectBursts(records: Iterable<FailedLogin>, options: BurstOptions): BurstCandidate[] {
  if (!(options.threshold >= 1) || !(options.windowMs > 0)) {
    throw new RangeError('threshold must be ≥ 1 and windowMs > 0');
  }
  const byIp = new Map<string, FailedLogin[]>();
  for (const record of records) {
    const list = byIp.get(record.ip) ?? [];
    list.push(record);
    byIp.set(record.ip, list);
  }
  const out: BurstCandidate[] = [];
  for (const [ip, list] of byIp) {
    list.sort((a, b) => a.ts - b.ts);
    let start = 0;
    while (start < list.length) {
      let end = start;
      while (end + 1 < list.length && (list[end + 1]?.ts ?? 0) - (list[end]?.ts ?? 0) <= options.windowMs)
        end++;
      const run = list.slice(start, end + 1);
      let densest = 0;
      let left = 0;
      for (let right = 0; right < run.length; right++) {
        while ((run[right]?.ts ?? 0) - (run[left]?.ts ?? 0) > options.windowMs) left++;
        densest = Math.max(densest, right - left + 1);
      }
      if (densest >= options.threshold) {
        const usernames = [...new Set(run.map((r) => r.username).filter((u): u is string => u !== null))];
        const firstTs = run[0]?.ts ?? 0;
        const lastTs = run[run.length - 1]?.ts ?? 0;
        out.push({
          ip,
          category: 'brute_force',
          protocol: 'ssh',
          failures: run.length,
          firstTs,
          lastTs,
          usernames: usernames.slice(0, 10),
          comment: `${run.length} failed SSH logins between ${new Date(firstTs).toISOString()} and ${new Date(lastTs).toISOString()}`,
        });
      }
      start = end + 1;
    }
  }
  return out.sort((a, b) => a.firstTs - b.firstTs || a.ip.localeCompare(b.ip));
}
