// Reads third-party blocklists (plain IPs, CIDRs, `IP<TAB>count`, comments, dirty rows) into feed entries (SPEC §1, §7).
import { type Cidr, isPublicCidr, parseCidr } from '../core/ip.js';
import { emptyTally, type LineSource, type LineTally, tallyRejected } from './line-tally.js';

/** Reasons a feed line is refused (case 011): every such line is counted under one of them. */
export type FeedRejection = 'malformed' | 'non_public' | 'unsupported';

export interface FeedEntry {
  /** Canonical text: an address for a single host, `network/prefix` otherwise. */
  readonly value: string;
  readonly kind: 'ip' | 'cidr';
  readonly cidr: Cidr;
  /** The number a list puts beside the address (IPsum: how many lists carry it), when present. */
  readonly count: number | null;
  readonly line: number;
}

export interface FeedParser {
  push(line: string): FeedEntry | null;
  readonly tally: LineTally;
}

const URL_LIKE = /^[a-z][a-z0-9+.-]*:\/\//i;
const HOSTNAME = /^(?=.*[g-z])[a-z0-9.-]+$/i;
const RANGE_OR_WILDCARD = /^[0-9a-f.:]+\s*-\s*[0-9a-f.:]+$|\*/i;

/** Classifies one already-trimmed, non-comment field; returns the entry or the rejection reason. */
function parseField(field: string): { cidr: Cidr } | FeedRejection {
  if (URL_LIKE.test(field) || RANGE_OR_WILDCARD.test(field)) return 'unsupported';
  if (HOSTNAME.test(field) && !field.includes(':')) return 'unsupported';
  const parsed = parseCidr(field);
  if (!parsed.ok) return 'malformed';
  // Host bits are cleared (45.83.0.7/24 → 45.83.0.0/24): the list meant the network.
  return isPublicCidr(parsed.cidr) ? { cidr: parsed.cidr } : 'non_public';
}

export function createFeedParser(): FeedParser {
  const tally = emptyTally();

  function push(rawLine: string): FeedEntry | null {
    tally.lines++;
    const lineNumber = tally.lines;
    let line = lineNumber === 1 ? rawLine.replace(/^\uFEFF/, '') : rawLine;
    // Inline comments: "1.2.3.4 # note", "1.10.16.0/20 ; SBL256894".
    const comment = line.search(/[#;]|\s\/\//);
    if (comment >= 0) line = line.slice(0, comment);
    line = line.trim();
    if (line === '') {
      tally.ignored++;
      return null;
    }
    if (URL_LIKE.test(line)) {
      tallyRejected(tally, 'unsupported', lineNumber);
      return null;
    }
    const fields = line.split(/[\s,]+/);
    const first = fields[0] ?? '';
    const second = fields[1];
    if (fields.length === 3 && second === '-') {
      // "1.2.3.4 - 1.2.3.9": ranges are not expanded.
      tallyRejected(tally, 'unsupported', lineNumber);
      return null;
    }
    const result = parseField(first);
    if (typeof result === 'string') {
      tallyRejected(tally, result, lineNumber);
      return null;
    }
    const count = second !== undefined && /^[0-9]{1,9}$/.test(second) ? Number(second) : null;
    const { cidr } = result;
    const single = cidr.prefixLength === (cidr.network.version === 4 ? 32 : 128);
    tally.accepted++;
    return {
      value: single ? cidr.network.text : cidr.text,
      kind: single ? 'ip' : 'cidr',
      cidr,
      count,
      line: lineNumber,
    };
  }

  return { push, tally };
}

/** Streams entries from a feed; the parser's tally is complete once iteration ends. */
export async function* parseFeedLines(lines: LineSource, parser: FeedParser): AsyncGenerator<FeedEntry> {
  for await (const line of lines) {
    const entry = parser.push(line);
    if (entry !== null) yield entry;
  }
}

/** Rejection counts keyed by reason, with zeroes, for import summaries. */
export function feedRejections(tally: LineTally): Record<FeedRejection, { count: number; lines: number[] }> {
  const pick = (reason: FeedRejection) => tally.rejected[reason] ?? { count: 0, lines: [] };
  return { malformed: pick('malformed'), non_public: pick('non_public'), unsupported: pick('unsupported') };
}
