// Sensor event model (SPEC §7) and the validator every event passes before it is stored or classified.
import { isPublicIp, parseIp } from './ip.js';

export const EVENT_TYPES = [
  'connect',
  'auth',
  'command',
  'request',
  'download',
  'tunnel',
  'disconnect',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** Fields every event carries. `ts` is epoch milliseconds; `srcIp` is canonical and public. */
export interface EventBase {
  readonly id: string;
  readonly ts: number;
  readonly sensor: string;
  readonly session: string;
  readonly srcIp: string;
  /** Null when the source did not record it (Cowrie only logs ports on connect). */
  readonly srcPort: number | null;
  /** The honeypot's own port the attacker connected to. */
  readonly dstPort: number | null;
  /** Lower-case token, ≤ 32 chars (SPEC §1). */
  readonly protocol: string;
}

export interface ConnectEvent extends EventBase {
  readonly type: 'connect';
}
export interface AuthEvent extends EventBase {
  readonly type: 'auth';
  readonly username: string;
  readonly password: string;
  readonly success: boolean;
}
export interface CommandEvent extends EventBase {
  readonly type: 'command';
  /** A shell line, or a protocol command (Redis, FTP, SMTP) as received. */
  readonly command: string;
}
export interface RequestEvent extends EventBase {
  readonly type: 'request';
  readonly method: string;
  /** Path plus query string, as received (not decoded). */
  readonly path: string;
  readonly userAgent: string | null;
  /** A prefix of the request body. */
  readonly body: string | null;
}
export interface DownloadEvent extends EventBase {
  readonly type: 'download';
  readonly url: string;
  /** Lower-case hex SHA-256 of the fetched content, when the sensor captured it. */
  readonly sha256: string | null;
}
/** A proxy request through the honeypot (SSH direct-tcpip); the target is kept apart from `dstPort`. */
export interface TunnelEvent extends EventBase {
  readonly type: 'tunnel';
  readonly targetHost: string;
  readonly targetPort: number;
  /** A prefix of the first payload sent through the tunnel, when recorded. */
  readonly data: string | null;
}
export interface DisconnectEvent extends EventBase {
  readonly type: 'disconnect';
  readonly durationMs: number | null;
}

export type SensorEvent =
  | ConnectEvent
  | AuthEvent
  | CommandEvent
  | RequestEvent
  | DownloadEvent
  | TunnelEvent
  | DisconnectEvent;

export type EventValidation = { ok: true; event: SensorEvent } | { ok: false; reason: string };

/** Length limits (characters). Sensors and importers truncate attacker strings to these before sending. */
export const EVENT_LIMITS = {
  id: 128,
  sensor: 64,
  session: 128,
  protocol: 32,
  username: 256,
  password: 256,
  command: 8192,
  method: 32,
  path: 8192,
  userAgent: 1024,
  body: 8192,
  url: 2048,
  targetHost: 255,
  data: 8192,
} as const;

/** Events may be stamped at most this far ahead of the server clock (SPEC §2.5). */
export const MAX_FUTURE_SKEW_MS = 5 * 60 * 1000;

const PROTOCOL_TOKEN = /^[a-z0-9][a-z0-9._-]*$/;
const SENSOR_TOKEN = /^[A-Za-z0-9][A-Za-z0-9._:@-]*$/;
// ISO-8601 date-time; the offset is optional (read as UTC, SPEC §2.5).
const ISO_TIMESTAMP =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:?\d{2})?$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;
// C0 controls except tab/newline/carriage return, plus DEL: never legitimate in ids and names.
// biome-ignore lint/suspicious/noControlCharactersInRegex: the point is to find control characters
const CONTROL = /[\u0000-\u001f\u007f]/;

class Invalid extends Error {}

function fail(reason: string): never {
  throw new Invalid(reason);
}

type Input = Record<string, unknown>;

// The helpers take the field's value, read by the caller with a plain property access (`input.id`): a
// keyed read through a shared helper (`input[field]`) is megamorphic across fields and event shapes, and
// was most of the validator's time on large batches.
function text(value: unknown, field: string, max: number, allowEmpty: boolean): string {
  if (typeof value !== 'string') fail(`${field} must be a string`);
  if (!allowEmpty && value.length === 0) fail(`${field} must not be empty`);
  if (value.length > max) fail(`${field} is longer than ${max} characters`);
  return value;
}

function nullableText(value: unknown, field: string, max: number): string | null {
  if (value === undefined || value === null) return null;
  return text(value, field, max, true);
}

function identifier(value: unknown, field: string, max: number): string {
  const checked = text(value, field, max, false);
  if (CONTROL.test(checked)) fail(`${field} contains control characters`);
  return checked;
}

function port(value: unknown, field: string, required: boolean): number | null {
  if (value === undefined || value === null) {
    if (required) fail(`${field} is required`);
    return null;
  }
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 65535) {
    fail(`${field} must be an integer 0-65535`);
  }
  return value;
}

/**
 * Reads an ISO-8601 string (offset or Z; none means UTC) or epoch milliseconds into epoch ms.
 * Returns a reason string when the value is neither.
 */
export function parseTimestamp(value: unknown): number | string {
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 0)
      return 'ts must be a non-negative integer of epoch milliseconds';
    if (value > 8.64e15) return 'ts is out of range';
    return value;
  }
  if (typeof value !== 'string') return 'ts must be an ISO-8601 string or epoch milliseconds';
  const match = ISO_TIMESTAMP.exec(value.trim());
  if (!match) return 'ts is not an ISO-8601 date-time';
  const [, y, mo, d, h, mi, s, fraction, zone] = match;
  const month = Number(mo);
  const day = Number(d);
  if (month < 1 || month > 12 || day < 1 || day > 31 || Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) {
    return 'ts has an out-of-range component';
  }
  let offsetMinutes = 0;
  if (zone && zone !== 'Z' && zone !== 'z') {
    const digits = zone.replace(':', '');
    const sign = digits.startsWith('-') ? -1 : 1;
    offsetMinutes = sign * (Number(digits.slice(1, 3)) * 60 + Number(digits.slice(3, 5)));
  }
  const millis = fraction ? Math.floor(Number(`0${fraction}`) * 1000) : 0;
  const utc = Date.UTC(Number(y), month - 1, day, Number(h), Number(mi), Number(s), millis);
  // Date.UTC rolls 31 February into March; refuse such dates instead of guessing.
  if (new Date(utc).getUTCDate() !== day) return 'ts has an out-of-range component';
  return utc - offsetMinutes * 60_000;
}

// Batches repeat a few source addresses many times: remember each text's verdict (bounded, cleared when full).
const SOURCE_IP_MEMO = new Map<string, { ok: true; text: string } | { ok: false; reason: string }>();
const SOURCE_IP_MEMO_SIZE = 10_000;

/** `srcIp` as its canonical text, or why it is refused (not an address, or not a public one). */
function sourceIp(value: string): { ok: true; text: string } | { ok: false; reason: string } {
  let verdict = SOURCE_IP_MEMO.get(value);
  if (verdict) return verdict;
  const parsed = parseIp(value);
  if (!parsed.ok) verdict = { ok: false, reason: `srcIp is not an IP address: ${parsed.reason}` };
  else if (!isPublicIp(parsed.ip)) verdict = { ok: false, reason: 'srcIp is not a public address' };
  else verdict = { ok: true, text: parsed.ip.text };
  if (SOURCE_IP_MEMO.size >= SOURCE_IP_MEMO_SIZE) SOURCE_IP_MEMO.clear();
  SOURCE_IP_MEMO.set(value, verdict);
  return verdict;
}

// Sensor names and protocols repeat on every event of a batch: the last few verdicts are kept (bounded).
const TOKEN_MEMO_SIZE = 64;
const SENSOR_MEMO = new Set<string>();
const PROTOCOL_MEMO = new Map<string, string>();

function sensorName(value: unknown): string {
  if (typeof value === 'string' && SENSOR_MEMO.has(value)) return value;
  const sensor = text(value, 'sensor', EVENT_LIMITS.sensor, false);
  if (!SENSOR_TOKEN.test(sensor)) fail('sensor must be a token of letters, digits and . _ : @ -');
  if (SENSOR_MEMO.size >= TOKEN_MEMO_SIZE) SENSOR_MEMO.clear();
  SENSOR_MEMO.add(sensor);
  return sensor;
}

function protocolName(value: unknown): string {
  if (typeof value !== 'string') fail('protocol must be a string');
  const known = PROTOCOL_MEMO.get(value);
  if (known !== undefined) return known;
  const protocol = value.trim().toLowerCase();
  if (protocol.length === 0 || protocol.length > EVENT_LIMITS.protocol || !PROTOCOL_TOKEN.test(protocol)) {
    fail('protocol must be a lower-case token of at most 32 characters');
  }
  if (PROTOCOL_MEMO.size >= TOKEN_MEMO_SIZE) PROTOCOL_MEMO.clear();
  PROTOCOL_MEMO.set(value, protocol);
  return protocol;
}

// Checks run in the order of the fields below (the first problem is the one reported); each event type
// is built as one object literal, fields in the order `EventBase` then `type` then the type's own.
function validateUnchecked(input: Input, now: number, maxAgeMs: number | null): SensorEvent {
  const id = identifier(input.id, 'id', EVENT_LIMITS.id);
  const sensor = sensorName(input.sensor);
  const session = identifier(input.session, 'session', EVENT_LIMITS.session);

  const ts = parseTimestamp(input.ts);
  if (typeof ts === 'string') fail(ts);
  if (ts > now + MAX_FUTURE_SKEW_MS) fail('ts is more than 5 minutes in the future');
  if (maxAgeMs !== null && ts < now - maxAgeMs) fail('ts is older than the retention window');

  const srcIpText = input.srcIp;
  if (typeof srcIpText !== 'string') fail('srcIp must be a string');
  const source = sourceIp(srcIpText);
  if (source.ok === false) fail(source.reason);
  const srcIp = source.text;

  const srcPort = port(input.srcPort, 'srcPort', false);
  const dstPort = port(input.dstPort, 'dstPort', false);
  const protocol = protocolName(input.protocol);

  switch (input.type) {
    case 'connect':
      return { id, ts, sensor, session, srcIp, srcPort, dstPort, protocol, type: 'connect' };
    case 'auth': {
      const success = input.success;
      if (typeof success !== 'boolean') fail('success must be a boolean');
      const username = text(input.username, 'username', EVENT_LIMITS.username, true);
      const password = text(input.password, 'password', EVENT_LIMITS.password, true);
      return {
        id,
        ts,
        sensor,
        session,
        srcIp,
        srcPort,
        dstPort,
        protocol,
        type: 'auth',
        username,
        password,
        success,
      };
    }
    case 'command': {
      const command = text(input.command, 'command', EVENT_LIMITS.command, true);
      return { id, ts, sensor, session, srcIp, srcPort, dstPort, protocol, type: 'command', command };
    }
    case 'request': {
      const method = identifier(input.method, 'method', EVENT_LIMITS.method);
      if (/\s/.test(method)) fail('method must not contain whitespace');
      const path = text(input.path, 'path', EVENT_LIMITS.path, false);
      const userAgent = nullableText(input.userAgent, 'userAgent', EVENT_LIMITS.userAgent);
      const body = nullableText(input.body, 'body', EVENT_LIMITS.body);
      return {
        id,
        ts,
        sensor,
        session,
        srcIp,
        srcPort,
        dstPort,
        protocol,
        type: 'request',
        method,
        path,
        userAgent,
        body,
      };
    }
    case 'download': {
      const sha = input.sha256;
      if (sha !== undefined && sha !== null && (typeof sha !== 'string' || !SHA256_HEX.test(sha))) {
        fail('sha256 must be 64 lower-case hex digits or null');
      }
      const url = identifier(input.url, 'url', EVENT_LIMITS.url);
      const sha256 = typeof sha === 'string' ? sha : null;
      return { id, ts, sensor, session, srcIp, srcPort, dstPort, protocol, type: 'download', url, sha256 };
    }
    case 'tunnel': {
      const targetPort = port(input.targetPort, 'targetPort', true) ?? 0;
      const targetHost = identifier(input.targetHost, 'targetHost', EVENT_LIMITS.targetHost);
      const data = nullableText(input.data, 'data', EVENT_LIMITS.data);
      return {
        id,
        ts,
        sensor,
        session,
        srcIp,
        srcPort,
        dstPort,
        protocol,
        type: 'tunnel',
        targetHost,
        targetPort,
        data,
      };
    }
    case 'disconnect': {
      const duration = input.durationMs;
      if (duration !== undefined && duration !== null) {
        if (typeof duration !== 'number' || !Number.isFinite(duration) || duration < 0) {
          fail('durationMs must be a non-negative number or null');
        }
      }
      const durationMs = typeof duration === 'number' ? duration : null;
      return { id, ts, sensor, session, srcIp, srcPort, dstPort, protocol, type: 'disconnect', durationMs };
    }
    default:
      return fail(`type must be one of ${EVENT_TYPES.join(', ')}`);
  }
}

/**
 * Checks every field of an untrusted event (SPEC §7) and returns a normalised copy holding only known
 * fields: `ts` as epoch ms, `srcIp` canonical, `protocol` lower-cased. `now` is epoch ms; `maxAgeMs`
 * (when not null) refuses events older than `now - maxAgeMs`. Returns the first problem found.
 */
export function validateEvent(input: unknown, now: number, maxAgeMs: number | null): EventValidation {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return { ok: false, reason: 'an event must be a JSON object' };
  }
  try {
    return { ok: true, event: validateUnchecked(input as Input, now, maxAgeMs) };
  } catch (error) {
    if (error instanceof Invalid) return { ok: false, reason: error.message };
    throw error;
  }
}
