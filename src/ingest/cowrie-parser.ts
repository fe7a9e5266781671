// Turns Cowrie honeypot JSON lines into sensor events (SPEC §7 importers); pure: lines in, events and a tally out.
import { hash } from 'node:crypto';
import {
  EVENT_LIMITS,
  MAX_FUTURE_SKEW_MS,
  parseTimestamp,
  type SensorEvent,
  validateEvent,
} from '../core/events.js';
import { isPublicIp, parseIp } from '../core/ip.js';
import { emptyTally, type LineSource, type LineTally, tallyRejected, tallySkipped } from './line-tally.js';

export interface CowrieParserOptions {
  /** Clock for the "not in the future" check, epoch ms. */
  readonly now: number;
  /** Refuse events older than this (null or absent: keep any age, e.g. importing an archive). */
  readonly maxAgeMs?: number | null;
  /** Sensor name when a line has no `sensor` field. */
  readonly defaultSensor?: string;
}

export interface CowrieParser {
  /** Parses one line; returns the event, or null when the line was ignored, skipped or rejected. */
  push(line: string): SensorEvent | null;
  readonly tally: LineTally;
}

// Cowrie logs ports and protocol only on session.connect; later events of the session inherit them.
interface SessionState {
  srcPort: number | null;
  dstPort: number | null;
  protocol: string;
}
const MAX_OPEN_SESSIONS = 100_000;

// Event ids carrying nothing our event model has a type for; kept apart from unknown ids in the tally.
const SKIPPED: Readonly<Record<string, string>> = {
  'cowrie.command.failed': 'duplicate_of_command_input',
  'cowrie.session.file_download.failed': 'download_failed',
  'cowrie.client.version': 'client_metadata',
  'cowrie.client.kex': 'client_metadata',
  'cowrie.client.size': 'client_metadata',
  'cowrie.client.var': 'client_metadata',
  'cowrie.client.fingerprint': 'client_metadata',
  'cowrie.session.params': 'client_metadata',
  'cowrie.log.open': 'tty_log',
  'cowrie.log.closed': 'tty_log',
  'cowrie.session.input': 'tty_log',
};

function str(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

function num(value: unknown): number | null {
  return typeof value === 'number' && Number.isInteger(value) ? value : null;
}

function clip(value: string, max: number): string {
  return value.length > max ? value.slice(0, max) : value;
}

/** A stable id: re-importing the same line yields the same id, so the store de-duplicates it. */
export function cowrieEventId(session: string, timestamp: string, eventid: string, line: string): string {
  // One-shot hash (no Hash object per line): the same digest as createHash().update().digest('hex').
  const digest = hash('sha256', `${session}\n${timestamp}\n${eventid}\n${line}`, 'hex');
  return `cowrie-${digest.slice(0, 40)}`;
}

export function createCowrieParser(options: CowrieParserOptions): CowrieParser {
  const tally = emptyTally();
  const sessions = new Map<string, SessionState>();
  const defaultSensor = options.defaultSensor ?? 'cowrie';
  const maxAgeMs = options.maxAgeMs ?? null;
  // Logs repeat a few source addresses on many lines: each text is parsed and classified once.
  const ipVerdicts = new Map<string, 'invalid_ip' | 'non_public_ip' | { text: string }>();

  function push(rawLine: string): SensorEvent | null {
    tally.lines++;
    const lineNumber = tally.lines;
    const line = rawLine.trim();
    if (line === '') {
      tally.ignored++;
      return null;
    }
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch {
      tallyRejected(tally, 'invalid_json', lineNumber);
      return null;
    }
    if (typeof record !== 'object' || record === null || Array.isArray(record)) {
      tallyRejected(tally, 'not_an_object', lineNumber);
      return null;
    }
    const raw = record as Record<string, unknown>;
    const eventid = str(raw.eventid);
    const session = str(raw.session);
    const timestamp = str(raw.timestamp);
    const srcIpText = str(raw.src_ip);
    if (!eventid || !session || !timestamp || !srcIpText) {
      tallyRejected(tally, 'missing_field', lineNumber);
      return null;
    }
    const skipReason = SKIPPED[eventid];
    if (skipReason) {
      tallySkipped(tally, skipReason, lineNumber);
      return null;
    }
    const ts = parseTimestamp(timestamp);
    if (typeof ts === 'string') {
      tallyRejected(tally, 'invalid_timestamp', lineNumber);
      return null;
    }
    if (ts > options.now + MAX_FUTURE_SKEW_MS) {
      tallyRejected(tally, 'in_future', lineNumber);
      return null;
    }
    if (maxAgeMs !== null && ts < options.now - maxAgeMs) {
      tallyRejected(tally, 'too_old', lineNumber);
      return null;
    }
    let ipVerdict = ipVerdicts.get(srcIpText);
    if (ipVerdict === undefined) {
      const ip = parseIp(srcIpText);
      ipVerdict = !ip.ok ? 'invalid_ip' : !isPublicIp(ip.ip) ? 'non_public_ip' : { text: ip.ip.text };
      if (ipVerdicts.size >= MAX_OPEN_SESSIONS) ipVerdicts.clear();
      ipVerdicts.set(srcIpText, ipVerdict);
    }
    if (typeof ipVerdict === 'string') {
      tallyRejected(tally, ipVerdict, lineNumber);
      return null;
    }

    let state = sessions.get(session);
    if (eventid === 'cowrie.session.connect') {
      state = {
        srcPort: num(raw.src_port),
        dstPort: num(raw.dst_port),
        protocol: (str(raw.protocol) ?? 'ssh').toLowerCase(),
      };
      if (sessions.size >= MAX_OPEN_SESSIONS) {
        const oldest = sessions.keys().next().value;
        if (oldest !== undefined) sessions.delete(oldest);
      }
      sessions.set(session, state);
    }
    // Without a connect line (a log cut mid-session), the transport name tells SSH from Telnet.
    const protocol = state?.protocol ?? (/telnet/i.test(str(raw.system) ?? '') ? 'telnet' : 'ssh');
    const base = {
      id: cowrieEventId(session, timestamp, eventid, line),
      ts,
      sensor: str(raw.sensor) ?? defaultSensor,
      session,
      srcIp: ipVerdict.text,
      srcPort: state?.srcPort ?? null,
      dstPort: state?.dstPort ?? null,
      protocol,
    };

    let candidate: Record<string, unknown>;
    switch (eventid) {
      case 'cowrie.session.connect':
        candidate = { ...base, type: 'connect' };
        break;
      case 'cowrie.login.failed':
      case 'cowrie.login.success':
        candidate = {
          ...base,
          type: 'auth',
          username: clip(str(raw.username) ?? '', EVENT_LIMITS.username),
          password: clip(str(raw.password) ?? '', EVENT_LIMITS.password),
          success: eventid === 'cowrie.login.success',
        };
        break;
      case 'cowrie.command.input':
        candidate = { ...base, type: 'command', command: clip(str(raw.input) ?? '', EVENT_LIMITS.command) };
        break;
      case 'cowrie.session.file_download':
      case 'cowrie.session.file_upload': {
        const shasum = str(raw.shasum)?.toLowerCase() ?? null;
        const url = str(raw.url) ?? (str(raw.filename) ? `upload:${str(raw.filename)}` : null);
        candidate = {
          ...base,
          type: 'download',
          url: url === null ? '' : clip(url, EVENT_LIMITS.url),
          sha256: shasum && /^[0-9a-f]{64}$/.test(shasum) ? shasum : null,
        };
        break;
      }
      case 'cowrie.direct-tcpip.request':
      case 'cowrie.direct-tcpip.data': {
        const data = str(raw.data);
        candidate = {
          ...base,
          type: 'tunnel',
          targetHost: str(raw.dst_ip) ?? '',
          targetPort: num(raw.dst_port),
          data: data === null ? null : clip(data, EVENT_LIMITS.data),
        };
        break;
      }
      case 'cowrie.session.closed': {
        const duration = raw.duration;
        candidate = {
          ...base,
          type: 'disconnect',
          durationMs: typeof duration === 'number' && duration >= 0 ? Math.round(duration * 1000) : null,
        };
        sessions.delete(session);
        break;
      }
      default:
        tallySkipped(tally, 'unknown_eventid', lineNumber);
        return null;
    }
    const result = validateEvent(candidate, options.now, maxAgeMs);
    if (!result.ok) {
      tallyRejected(tally, 'invalid_event', lineNumber);
      return null;
    }
    tally.accepted++;
    return result.event;
  }

  return { push, tally };
}

/** Streams events from Cowrie JSON lines; the parser's tally is complete once the iteration ends. */
export async function* parseCowrieLines(
  lines: LineSource,
  parser: CowrieParser,
): AsyncGenerator<SensorEvent> {
  for await (const line of lines) {
    const event = parser.push(line);
    if (event !== null) yield event;
  }
}
