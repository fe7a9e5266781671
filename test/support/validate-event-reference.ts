// The sensor event validator as it was before decision 0640 rewrote it for speed, kept verbatim (memo aside)
// as the reference the equivalence test compares the current one with: same result, same reason, same
// field order, for every input.
import {
  EVENT_LIMITS,
  EVENT_TYPES,
  type EventValidation,
  MAX_FUTURE_SKEW_MS,
  parseTimestamp,
  type SensorEvent,
} from '../../src/core/events.js';
import { isPublicIp, parseIp } from '../../src/core/ip.js';

const PROTOCOL_TOKEN = /^[a-z0-9][a-z0-9._-]*$/;
const SENSOR_TOKEN = /^[A-Za-z0-9][A-Za-z0-9._:@-]*$/;
// ISO-8601 date-time; the offset is optional (read as UTC, SPEC §2.5).
const SHA256_HEX = /^[0-9a-f]{64}$/;
// C0 controls except tab/newline/carriage return, plus DEL: never legitimate in ids and names.
// biome-ignore lint/suspicious/noControlCharactersInRegex: the point is to find control characters
const CONTROL = /[\u0000-\u001f\u007f]/;

class Invalid extends Error {}

function fail(reason: string): never {
  throw new Invalid(reason);
}

type Input = Record<string, unknown>;

function text(input: Input, field: string, max: number, opts: { allowEmpty?: boolean } = {}): string {
  const value = input[field];
  if (typeof value !== 'string') fail(`${field} must be a string`);
  if (!opts.allowEmpty && value.length === 0) fail(`${field} must not be empty`);
  if (value.length > max) fail(`${field} is longer than ${max} characters`);
  return value;
}

function nullableText(input: Input, field: string, max: number): string | null {
  const value = input[field];
  if (value === undefined || value === null) return null;
  return text(input, field, max, { allowEmpty: true });
}

function identifier(input: Input, field: string, max: number): string {
  const value = text(input, field, max);
  if (CONTROL.test(value)) fail(`${field} contains control characters`);
  return value;
}

function port(input: Input, field: string, required: boolean): number | null {
  const value = input[field];
  if (value === undefined || value === null) {
    if (required) fail(`${field} is required`);
    return null;
  }
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 65535) {
    fail(`${field} must be an integer 0-65535`);
  }
  return value;
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

function validateUnchecked(input: Input, now: number, maxAgeMs: number | null): SensorEvent {
  const id = identifier(input, 'id', EVENT_LIMITS.id);
  const sensor = text(input, 'sensor', EVENT_LIMITS.sensor);
  if (!SENSOR_TOKEN.test(sensor)) fail('sensor must be a token of letters, digits and . _ : @ -');
  const session = identifier(input, 'session', EVENT_LIMITS.session);

  const ts = parseTimestamp(input.ts);
  if (typeof ts === 'string') fail(ts);
  if (ts > now + MAX_FUTURE_SKEW_MS) fail('ts is more than 5 minutes in the future');
  if (maxAgeMs !== null && ts < now - maxAgeMs) fail('ts is older than the retention window');

  if (typeof input.srcIp !== 'string') fail('srcIp must be a string');
  const srcIp = sourceIp(input.srcIp);
  if (srcIp.ok === false) fail(srcIp.reason);

  const srcPort = port(input, 'srcPort', false);
  const dstPort = port(input, 'dstPort', false);

  if (typeof input.protocol !== 'string') fail('protocol must be a string');
  const protocol = input.protocol.trim().toLowerCase();
  if (protocol.length === 0 || protocol.length > EVENT_LIMITS.protocol || !PROTOCOL_TOKEN.test(protocol)) {
    fail('protocol must be a lower-case token of at most 32 characters');
  }

  const base = { id, ts, sensor, session, srcIp: srcIp.text, srcPort, dstPort, protocol };
  switch (input.type) {
    case 'connect':
      return { ...base, type: 'connect' };
    case 'auth': {
      if (typeof input.success !== 'boolean') fail('success must be a boolean');
      return {
        ...base,
        type: 'auth',
        username: text(input, 'username', EVENT_LIMITS.username, { allowEmpty: true }),
        password: text(input, 'password', EVENT_LIMITS.password, { allowEmpty: true }),
        success: input.success,
      };
    }
    case 'command':
      return {
        ...base,
        type: 'command',
        command: text(input, 'command', EVENT_LIMITS.command, { allowEmpty: true }),
      };
    case 'request': {
      const method = identifier(input, 'method', EVENT_LIMITS.method);
      if (/\s/.test(method)) fail('method must not contain whitespace');
      return {
        ...base,
        type: 'request',
        method,
        path: text(input, 'path', EVENT_LIMITS.path),
        userAgent: nullableText(input, 'userAgent', EVENT_LIMITS.userAgent),
        body: nullableText(input, 'body', EVENT_LIMITS.body),
      };
    }
    case 'download': {
      const sha = input.sha256;
      if (sha !== undefined && sha !== null && (typeof sha !== 'string' || !SHA256_HEX.test(sha))) {
        fail('sha256 must be 64 lower-case hex digits or null');
      }
      return {
        ...base,
        type: 'download',
        url: identifier(input, 'url', EVENT_LIMITS.url),
        sha256: typeof sha === 'string' ? sha : null,
      };
    }
    case 'tunnel': {
      const targetPort = port(input, 'targetPort', true) ?? 0;
      return {
        ...base,
        type: 'tunnel',
        targetHost: identifier(input, 'targetHost', EVENT_LIMITS.targetHost),
        targetPort,
        data: nullableText(input, 'data', EVENT_LIMITS.data),
      };
    }
    case 'disconnect': {
      const duration = input.durationMs;
      if (duration !== undefined && duration !== null) {
        if (typeof duration !== 'number' || !Number.isFinite(duration) || duration < 0) {
          fail('durationMs must be a non-negative number or null');
        }
      }
      return { ...base, type: 'disconnect', durationMs: typeof duration === 'number' ? duration : null };
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
export function referenceValidateEvent(
  input: unknown,
  now: number,
  maxAgeMs: number | null,
): EventValidation {
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
