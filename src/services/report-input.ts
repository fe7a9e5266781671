// Validation of one report's fields (SPEC §3.3), shared by the single, bulk and importer paths.
import { type Category, parseCategory } from '../core/categories.js';
import { type Failure, failure } from '../core/errors.js';
import { type Cidr, cidrContains, type IpAddress, isPublicIp, parseIp } from '../core/ip.js';
import { parseInputTimestamp, TIMESTAMP_FORMAT_HINT, utcDay } from '../core/time.js';
import type { NewReport } from '../store/reports-repository.js';

export interface RawReportFields {
  ip?: unknown;
  category?: unknown;
  categories?: unknown;
  protocol?: unknown;
  comment?: unknown;
  timestamp?: unknown;
}

export interface ValidReport {
  ip: IpAddress;
  /** Primary category first. */
  categories: Category[];
  protocol: string | null;
  comment: string | null;
  /** When the abuse happened (epoch ms); the receive time when the reporter gave none. */
  reportedAt: number;
}

export const MAX_COMMENT_LENGTH = 1000;
const PROTOCOL_PATTERN = /^[a-z0-9][a-z0-9_.+-]{0,31}$/;

/** Describes a value for an error message without echoing more than a short, printable excerpt. */
function shown(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  const printable = (text ?? String(value)).replace(/[^\x20-\x7e]/g, '?');
  return printable.length > 64 ? `${printable.slice(0, 61)}...` : printable;
}

/** Parses and checks an IP for use as evidence: canonical, public, not on the operator's allowlist. */
export function validateEvidenceIp(
  value: unknown,
  allowlist: readonly Cidr[],
): { ok: true; ip: IpAddress } | Failure {
  if (value === undefined || value === null || value === '') {
    return failure('invalid_parameter', 'The "ip" parameter is required.', 'ip');
  }
  if (typeof value !== 'string') return failure('invalid_ip', 'Invalid IP address: expected text.', 'ip');
  const parsed = parseIp(value);
  if (!parsed.ok)
    return failure('invalid_ip', `Invalid IP address "${shown(value)}": ${parsed.reason}.`, 'ip');
  if (!isPublicIp(parsed.ip)) {
    return failure(
      'ip_not_public',
      `${parsed.ip.text} is not a public address and cannot be reported.`,
      'ip',
    );
  }
  if (allowlist.some((cidr) => cidrContains(cidr, parsed.ip.key))) {
    return failure(
      'ip_protected',
      `${parsed.ip.text} is on this instance's allowlist and cannot be reported.`,
      'ip',
    );
  }
  return { ok: true, ip: parsed.ip };
}

function parseCategories(fields: RawReportFields): Category[] | Failure {
  const raw: unknown[] = [];
  const add = (value: unknown, name: string): Failure | null => {
    if (typeof value === 'number') raw.push(value);
    else if (typeof value === 'string')
      raw.push(
        ...value
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean),
      );
    else if (Array.isArray(value)) raw.push(...value);
    else if (value !== undefined && value !== null) {
      return failure(
        'invalid_parameter',
        `Invalid ${name} ${shown(value)}: expected a name or an id 1-16.`,
        name,
      );
    }
    return null;
  };
  const problem = add(fields.category, 'category') ?? add(fields.categories, 'categories');
  if (problem) return problem;
  if (raw.length === 0) {
    return failure(
      'invalid_parameter',
      'The "category" parameter is required (a name such as brute_force, or an id 1-16).',
      'category',
    );
  }
  const out: Category[] = [];
  for (const item of raw) {
    const category = typeof item === 'string' || typeof item === 'number' ? parseCategory(item) : null;
    if (!category) {
      return failure(
        'invalid_parameter',
        `Invalid category "${shown(item)}": expected a name such as brute_force or port_scan, or an id 1-16.`,
        'category',
      );
    }
    if (!out.includes(category)) out.push(category);
  }
  return out;
}

/** Validates one report; the first problem found is returned as a Failure naming its parameter. */
export function validateReport(
  fields: RawReportFields,
  now: number,
  allowlist: readonly Cidr[],
): { ok: true; report: ValidReport } | Failure {
  const ip = validateEvidenceIp(fields.ip, allowlist);
  if (!ip.ok) return ip;
  const categories = parseCategories(fields);
  if (!Array.isArray(categories)) return categories;

  let protocol: string | null = null;
  if (fields.protocol !== undefined && fields.protocol !== null && fields.protocol !== '') {
    const text = typeof fields.protocol === 'string' ? fields.protocol.trim().toLowerCase() : null;
    if (text === null || !PROTOCOL_PATTERN.test(text)) {
      return failure(
        'invalid_parameter',
        `Invalid protocol "${shown(fields.protocol)}": expected a lower-case name of at most 32 characters such as ssh.`,
        'protocol',
      );
    }
    protocol = text;
  }

  let comment: string | null = null;
  if (fields.comment !== undefined && fields.comment !== null && fields.comment !== '') {
    if (typeof fields.comment !== 'string') {
      return failure('invalid_parameter', 'The "comment" parameter must be text.', 'comment');
    }
    // UTF-16 length ≥ code points, so only a long comment needs counting (no array per comment).
    if (fields.comment.length > MAX_COMMENT_LENGTH && [...fields.comment].length > MAX_COMMENT_LENGTH) {
      return failure(
        'invalid_parameter',
        `The comment is longer than ${MAX_COMMENT_LENGTH} characters.`,
        'comment',
      );
    }
    comment = fields.comment;
  }

  let reportedAt = now;
  if (fields.timestamp !== undefined && fields.timestamp !== null && fields.timestamp !== '') {
    if (typeof fields.timestamp !== 'string') {
      return failure(
        'invalid_parameter',
        `Invalid timestamp ${shown(fields.timestamp)}: expected ${TIMESTAMP_FORMAT_HINT}.`,
        'timestamp',
      );
    }
    const parsed = parseInputTimestamp(fields.timestamp, now);
    if (!parsed.ok) {
      return failure(
        'invalid_parameter',
        `Invalid timestamp "${shown(fields.timestamp)}": ${parsed.reason}.`,
        'timestamp',
      );
    }
    reportedAt = parsed.epochMs;
  }
  return { ok: true, report: { ip: ip.ip, categories, protocol, comment, reportedAt } };
}

/** The stored form of a validated report by `keyId`, received at `now` (raw telemetry, SPEC §6). */
export function toNewReport(report: ValidReport, keyId: string, now: number): NewReport {
  return {
    ip: report.ip.text,
    ipKey: report.ip.key,
    keyId,
    category: report.categories[0] ?? 'other',
    categories: report.categories,
    protocol: report.protocol,
    comment: report.comment,
    reportedAt: report.reportedAt,
    receivedAt: now,
    day: utcDay(report.reportedAt),
  };
}
